import type { Knex } from 'knex';
import { createAuthFailureRepository, type AuthFailureParams } from '../../storage/auth-failures.js';

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

const secondsUntil = (until: number, now: number) => Math.max(1, Math.ceil((until - now) / 1000));

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
  const failures = createAuthFailureRepository(knex);
  const paramsOf = ([scope, key]: ThrottleKey, now: number): AuthFailureParams => ({
    scope,
    key,
    now,
    stale: now - windowMs,
    max: max(scope),
    lockUntil: now + lockMs,
    pendingUntil: now + pendingMs,
  });

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
    for (const key of keys) await failures.release(paramsOf(key, now));
    keys.forEach(wake);
  }

  /**
   * One try at a slot of every key, all or nothing: the slots already taken are given back
   * when a later key has none, so two checks can never each hold what the other waits for.
   */
  async function takeAll(keys: ThrottleKey[], now: number): Promise<{ taken: true } | { taken: false; key: ThrottleKey; lockedUntil: number }> {
    for (const [i, key] of keys.entries()) {
      if (await failures.take(paramsOf(key, now))) continue;
      await release(keys.slice(0, i), now);
      const lockedUntil = await failures.lockedUntil(paramsOf(key, now));
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
        const row = await failures.fail(paramsOf(key, now));
        // Failures never pass the limit while slots are taken under it: the one that reaches it locked the key.
        if (row.failures === max(key[0]) && row.lockedUntil > now) locked.push(key[0]);
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
      for (const key of keys) await (key[0] === 'account' ? failures.succeedClearing(paramsOf(key, now)) : failures.release(paramsOf(key, now)));
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
        const row = await failures.count(paramsOf(key, now));
        counts.push(row.failures);
        until = Math.max(until, row.lockedUntil);
      }
      return { retryAfter: until > now ? secondsUntil(until, now) : 0, counts };
    },

    /** Deletes counters whose window and lock have both run out and that no check still holds. */
    async sweep(now = Date.now()): Promise<number> {
      return failures.sweep(now, now - windowMs);
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
