import type { Knex } from 'knex';
import { fastQuery } from './fast-query.js';

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

/**
 * What every statement may use: the key, the time (epoch ms), where the window of the
 * failures counted begins to be stale, the key's limit, and the ends of a new lock and of new
 * pending slots.
 */
export interface AuthFailureParams {
  scope: string;
  key: string;
  now: number;
  stale: number;
  max: number;
  lockUntil: number;
  pendingUntil: number;
}

type Statement = { sql: string; names: string[] };
const valuesOf = (s: Statement, params: AuthFailureParams) => s.names.map((name) => params[name as keyof AuthFailureParams]);

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

const lockedUntilOf = (row: Record<string, unknown> | undefined) => Number(row?.['locked_until'] ?? 0);
const counted = (row: Record<string, unknown> | undefined) => ({ failures: Number(row?.['failures'] ?? 0), lockedUntil: lockedUntilOf(row) });

/**
 * SQL for `auth_failures`: the counters of the login throttle and of the mail requests, each
 * change one atomic statement (prepared: the login hot path).
 */
export function createAuthFailureRepository(knex: Knex) {
  const first = (s: Statement, params: AuthFailureParams) => fastQuery(knex, s.sql, valuesOf(s, params), 'first');
  const run = (s: Statement, params: AuthFailureParams) => fastQuery(knex, s.sql, valuesOf(s, params), 'run');

  return {
    /** Takes a slot of the key; false when it is locked or all its slots are taken or failed. */
    async take(params: AuthFailureParams): Promise<boolean> {
      return (await first(TAKE, params)) !== undefined;
    },

    /** When the key's lock ends (epoch ms), 0 when it has none. */
    async lockedUntil(params: AuthFailureParams): Promise<number> {
      return lockedUntilOf(await first(LOCKED_UNTIL, params));
    },

    /** Turns a slot into a failure; the key's failures and lock afterwards. */
    async fail(params: AuthFailureParams): Promise<{ failures: number; lockedUntil: number }> {
      return counted(await first(FAIL, params));
    },

    /** Gives a slot back and forgets the key's failures (unless locked). */
    async succeedClearing(params: AuthFailureParams): Promise<void> {
      await run(SUCCEED_CLEARING, params);
    },

    /** Gives a slot back, failures untouched. */
    async release(params: AuthFailureParams): Promise<void> {
      await run(RELEASE, params);
    },

    /** Counts one request; the key's count and lock afterwards. */
    async count(params: AuthFailureParams): Promise<{ failures: number; lockedUntil: number }> {
      return counted(await first(COUNT, params));
    },

    /** Deletes counters whose window (started at or before `stale`) and lock have both run out and that no check still holds. */
    async sweep(now: number, stale: number): Promise<number> {
      return knex('auth_failures')
        .where('window_start', '<=', stale)
        .andWhere((q) => q.whereNull('locked_until').orWhere('locked_until', '<=', now))
        .andWhere((q) => q.where('pending', 0).orWhereNull('pending_until').orWhere('pending_until', '<=', now))
        .delete();
    },
  };
}

export type AuthFailureRepository = ReturnType<typeof createAuthFailureRepository>;
