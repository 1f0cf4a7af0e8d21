import type { Knex } from 'knex';
import { fastQuery } from '../../storage/fast-query.js';

export interface ThrottlePolicy {
  /** Failures per account within the window before a lockout. */
  accountMax: number;
  /** Failures per client IP within the window before a lockout. */
  ipMax: number;
  windowSeconds: number;
  lockoutSeconds: number;
}

/** How long checks may wait and hold slots; the defaults suit production, tests shorten them. */
export interface ThrottleTiming {
  /** The longest a check waits for a slot while all of them are held by checks in flight. */
  maxWaitMs?: number;
  /**
   * How long the slots of a key count after the last one was taken. Far longer than any
   * check (a hash in a busy queue), it only matters for slots a dead process never gave back.
   */
  pendingMs?: number;
}

export type ThrottleScope = 'account' | 'ip';
export type ThrottleKey = [ThrottleScope, string];

/**
 * `ok`: the check may run (through `checking`) and must then be settled with `fail` or `succeed`.
 * Otherwise it must not run: a key is locked, or (`busy`) its slots stayed taken by checks
 * in flight for all of `maxWaitMs`.
 */
export type Admission = { ok: true } | { ok: false; retryAfter: number; busy: boolean };

const MAX_WAIT_MS = 10_000;
const PENDING_MS = 60_000;
/** Polling while a slot is waited for: doubling from the first to the last, with jitter. */
const FIRST_POLL_MS = 10;
const LAST_POLL_MS = 250;
/** Retry-After for a check that found no slot in time: nothing says when one frees. */
const BUSY_RETRY_SECONDS = 5;

/**
 * A statement with named parameters, compiled once into `?` placeholders: `:name` for text,
 * `#name` for a number PostgreSQL must see as bigint (a prepared statement cannot infer it).
 */
function statement(text: string): { sql: string; names: string[] } {
  const names: string[] = [];
  const sql = text.replace(/([:#])([a-zA-Z]+)/g, (_match, sigil: string, name: string) => {
    names.push(name);
    return sigil === '#' ? 'cast(? as bigint)' : '?';
  });
  return { sql, names };
}

type Params = Record<string, string | number>;
const valuesOf = (s: { names: string[] }, params: Params) => s.names.map((name) => params[name]);

// Fragments over the stored row. A lock that has run out forgives the failures that led to it,
// as a window that has run out does; pending slots past pending_until count as none.
const LOCKED = '(auth_failures.locked_until is not null and auth_failures.locked_until > #now)';
const FRESH = '(auth_failures.window_start <= #stale or (auth_failures.locked_until is not null and auth_failures.locked_until <= #now))';
const FAILURES = `(case when ${FRESH} then 0 else auth_failures.failures end)`;
const PENDING = '(case when auth_failures.pending_until > #now then auth_failures.pending else 0 end)';
const PENDING_LESS_ONE = `(case when ${PENDING} > 0 then ${PENDING} - 1 else 0 end)`;
const COLUMNS = 'auth_failures (scope, key, failures, window_start, locked_until, pending, pending_until)';

/**
 * Takes a slot only while failures and checks in flight leave one below the limit, in one
 * atomic upsert (a row lock on PostgreSQL, a single writer on SQLite): no row comes back
 * when the key is locked or full.
 */
const TAKE = statement(`insert into ${COLUMNS} values (:scope, :key, 0, #now, null, 1, #pendingUntil)
  on conflict (scope, key) do update set
    failures = ${FAILURES},
    window_start = case when ${FRESH} then #now else auth_failures.window_start end,
    locked_until = case when ${FRESH} then null else auth_failures.locked_until end,
    pending = ${PENDING} + 1,
    pending_until = #pendingUntil
  where not ${LOCKED} and ${FAILURES} + ${PENDING} < #max
  returning pending`);

const LOCKED_UNTIL = statement('select locked_until from auth_failures where scope = :scope and key = :key');

/** Turns a slot into a failure, locking the key when failures reach the limit (a lock is never extended). */
const NEXT = `(case when ${FRESH} then 1 else auth_failures.failures + 1 end)`;
const FAIL = statement(`insert into ${COLUMNS} values (:scope, :key, 1, #now, case when 1 >= #max then #lockUntil else null end, 0, null)
  on conflict (scope, key) do update set
    failures = ${NEXT},
    window_start = case when ${FRESH} then #now else auth_failures.window_start end,
    locked_until = case when ${LOCKED} then auth_failures.locked_until when ${NEXT} >= #max then #lockUntil else null end,
    pending = ${PENDING_LESS_ONE}
  returning failures, locked_until`);

/** Gives a slot back and forgets the key's failures (an account after its right password); other slots stay. */
const SUCCEED_CLEARING = statement(`update auth_failures set
    pending = ${PENDING_LESS_ONE},
    failures = case when ${LOCKED} then auth_failures.failures else 0 end,
    window_start = case when ${LOCKED} then auth_failures.window_start else #now end,
    locked_until = case when ${LOCKED} then auth_failures.locked_until else null end
  where scope = :scope and key = :key`);

/** Gives a slot back, failures untouched (an IP after a right password, or a check that never ended). */
const RELEASE = statement(`update auth_failures set pending = ${PENDING_LESS_ONE} where scope = :scope and key = :key`);

/**
 * A plain request counter (the mail requests): every request counts, and one that goes past
 * the limit locks the key. A locked key stays as it is.
 */
const COUNT_LOCKED = '(auth_failures.locked_until is not null and auth_failures.locked_until > #now)';
const COUNT_NEXT = '(case when auth_failures.window_start <= #stale then 1 else auth_failures.failures + 1 end)';
const COUNT = statement(`insert into ${COLUMNS} values (:scope, :key, 1, #now, case when 1 > #max then #lockUntil else null end, 0, null)
  on conflict (scope, key) do update set
    failures = case when ${COUNT_LOCKED} then auth_failures.failures else ${COUNT_NEXT} end,
    window_start = case when ${COUNT_LOCKED} then auth_failures.window_start
      when auth_failures.window_start <= #stale then #now else auth_failures.window_start end,
    locked_until = case when ${COUNT_LOCKED} then auth_failures.locked_until
      when ${COUNT_NEXT} > #max then #lockUntil else null end
  returning failures, locked_until`);

const secondsUntil = (until: number, now: number) => Math.max(1, Math.ceil((until - now) / 1000));
const lockedUntilOf = (row: Record<string, unknown> | undefined) => Number(row?.['locked_until'] ?? 0);

/**
 * Limits password (and code) guessing per account and per client IP in the database, so
 * limits hold across restarts and across every process on one PostgreSQL.
 *
 * A check takes a slot of each of its keys before it runs (`begin`), and a key has `max`
 * slots less its failures within the window: wrong guesses are counted before they are
 * checked and lock the key exactly at the limit however many arrive at once, while a right
 * password only holds a slot for the time of its check and never counts as a failure. A
 * check that finds every slot held by checks in flight waits for one rather than being
 * refused. Reaching the limit locks the key for `lockoutSeconds`.
 *
 * `count` is the other use of the same table: a plain request counter (mail requests).
 */
export function createLoginThrottle(knex: Knex, policy: ThrottlePolicy, timing: ThrottleTiming = {}) {
  const windowMs = policy.windowSeconds * 1000;
  const lockMs = policy.lockoutSeconds * 1000;
  const maxWaitMs = timing.maxWaitMs ?? MAX_WAIT_MS;
  const pendingMs = timing.pendingMs ?? PENDING_MS;
  const max = (scope: ThrottleScope) => (scope === 'account' ? policy.accountMax : policy.ipMax);
  const paramsOf = ([scope, key]: ThrottleKey, now: number): Params => ({
    scope,
    key,
    now,
    stale: now - windowMs,
    max: max(scope),
    lockUntil: now + lockMs,
    pendingUntil: now + pendingMs,
  });
  const first = (s: { sql: string; names: string[] }, key: ThrottleKey, now: number) => fastQuery(knex, s.sql, valuesOf(s, paramsOf(key, now)), 'first');
  const run = (s: { sql: string; names: string[] }, key: ThrottleKey, now: number) => fastQuery(knex, s.sql, valuesOf(s, paramsOf(key, now)), 'run');

  // Checks of this process waiting for a slot of a key, woken as soon as a check of that key
  // ends here; those ending in other processes are seen by polling.
  const waiters = new Map<string, Set<() => void>>();
  const idOf = ([scope, key]: ThrottleKey) => `${scope}\n${key}`;

  function wake(key: ThrottleKey): void {
    for (const resume of waiters.get(idOf(key)) ?? []) resume();
  }

  function sleepUnlessWoken(key: ThrottleKey, ms: number): Promise<void> {
    const id = idOf(key);
    const set = waiters.get(id) ?? new Set<() => void>();
    waiters.set(id, set);
    return new Promise((resolve) => {
      const resume = () => {
        clearTimeout(timer);
        set.delete(resume);
        if (set.size === 0 && waiters.get(id) === set) waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(resume, ms);
      set.add(resume);
    });
  }

  async function release(keys: ThrottleKey[], now: number): Promise<void> {
    for (const key of keys) await run(RELEASE, key, now);
    keys.forEach(wake);
  }

  /**
   * One try at a slot of every key, all or nothing: the slots already taken are given back
   * when a later key has none, so two checks can never each hold what the other waits for.
   */
  async function takeAll(keys: ThrottleKey[], now: number): Promise<{ taken: true } | { taken: false; key: ThrottleKey; lockedUntil: number }> {
    for (const [i, key] of keys.entries()) {
      if (await first(TAKE, key, now)) continue;
      await release(keys.slice(0, i), now);
      const lockedUntil = lockedUntilOf(await first(LOCKED_UNTIL, key, now));
      return { taken: false, key, lockedUntil: lockedUntil > now ? lockedUntil : 0 };
    }
    return { taken: true };
  }

  const pollDelay = (round: number) => Math.min(LAST_POLL_MS, FIRST_POLL_MS * 2 ** round) * (0.5 + Math.random() / 2);

  return {
    policy,

    /**
     * Before a password (or code) is checked: takes a slot of every key, waiting up to
     * `maxWaitMs` while all of a key's slots are held by checks in flight. A locked key is
     * answered at once, with the seconds its lock has left.
     */
    async begin(keys: ThrottleKey[]): Promise<Admission> {
      const deadline = Date.now() + maxWaitMs;
      for (let round = 0; ; round++) {
        const now = Date.now();
        const outcome = await takeAll(keys, now);
        if (outcome.taken) return { ok: true };
        if (outcome.lockedUntil) return { ok: false, retryAfter: secondsUntil(outcome.lockedUntil, now), busy: false };
        if (now >= deadline) return { ok: false, retryAfter: BUSY_RETRY_SECONDS, busy: true };
        await sleepUnlessWoken(outcome.key, Math.min(pollDelay(round), deadline - now));
      }
    },

    /** After a wrong password: its slots become failures. Says which keys this failure locked. */
    async fail(keys: ThrottleKey[]): Promise<ThrottleScope[]> {
      const now = Date.now();
      const locked: ThrottleScope[] = [];
      for (const key of keys) {
        const row = await first(FAIL, key, now);
        // Failures never pass the limit while slots are taken under it: the one that reaches it locked the key.
        if (Number(row?.['failures'] ?? 0) === max(key[0]) && lockedUntilOf(row) > now) locked.push(key[0]);
      }
      keys.forEach(wake);
      return locked;
    },

    /**
     * After a right password: gives the slots back, and forgets the account's failures (an
     * IP keeps its own: one right password among many guesses must not reset them).
     */
    async succeed(keys: ThrottleKey[]): Promise<void> {
      const now = Date.now();
      for (const key of keys) await run(key[0] === 'account' ? SUCCEED_CLEARING : RELEASE, key, now);
      keys.forEach(wake);
    },

    /**
     * Runs a check under the slots `begin` took. One that throws gives them back, counting
     * nothing; if even that fails, they run out with pending_until.
     */
    async checking<T>(keys: ThrottleKey[], check: () => Promise<T>): Promise<T> {
      try {
        return await check();
      } catch (error) {
        await release(keys, Date.now()).catch(() => {});
        throw error;
      }
    },

    /**
     * A plain request counter (mail requests), one atomic upsert per key: every request
     * counts, one going past the limit locks its key. Returns the seconds to wait when any
     * key is locked (the request must then be refused), and each key's count.
     */
    async count(keys: ThrottleKey[], now = Date.now()): Promise<{ retryAfter: number; counts: number[] }> {
      const counts: number[] = [];
      let until = 0;
      for (const key of keys) {
        const row = await first(COUNT, key, now);
        counts.push(Number(row?.['failures'] ?? 0));
        until = Math.max(until, lockedUntilOf(row));
      }
      return { retryAfter: until > now ? secondsUntil(until, now) : 0, counts };
    },

    /** Deletes counters whose window and lock have both run out and that no check still holds. */
    async sweep(now = Date.now()): Promise<number> {
      return knex('auth_failures')
        .where('window_start', '<=', now - windowMs)
        .andWhere((q) => q.whereNull('locked_until').orWhere('locked_until', '<=', now))
        .andWhere((q) => q.where('pending', 0).orWhereNull('pending_until').orWhere('pending_until', '<=', now))
        .delete();
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
