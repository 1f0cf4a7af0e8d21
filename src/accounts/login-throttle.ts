import type { Knex } from 'knex';
import { fastQuery } from '../db/fast-query.js';

export interface ThrottlePolicy {
  /** Failures per account within the window before a lockout. */
  accountMax: number;
  /** Failures per client IP within the window before a lockout. */
  ipMax: number;
  windowSeconds: number;
  lockoutSeconds: number;
}

export type ThrottleScope = 'account' | 'ip';

/**
 * Counts password attempts per account and per client IP in the database, so limits hold
 * across restarts and across every process on one PostgreSQL. An attempt is counted before
 * its password is checked; reaching the limit within the window locks that key for
 * `lockoutSeconds` (attempts while locked extend nothing); a success clears the account's
 * counter and gives the IP its attempt back.
 */
export function createLoginThrottle(knex: Knex, policy: ThrottlePolicy) {
  const windowMs = policy.windowSeconds * 1000;
  const lockMs = policy.lockoutSeconds * 1000;
  const max = (scope: ThrottleScope) => (scope === 'account' ? policy.accountMax : policy.ipMax);

  return {
    policy,

    /**
     * Counts an attempt before its password is checked: one atomic upsert per key. A key that
     * is locked stays as it is; one whose count goes past the limit is locked now. Returns
     * the seconds to wait when any key is locked (the attempt must not be checked), and
     * each key's count including this attempt.
     */
    async reserve(keys: Array<[ThrottleScope, string]>, now = Date.now()): Promise<{ retryAfter: number; counts: number[] }> {
      const counts: number[] = [];
      let until = 0;
      const n = 'cast(? as bigint)';
      for (const [scope, key] of keys) {
        const stale = now - windowMs;
        const locked = `(auth_failures.locked_until is not null and auth_failures.locked_until > ${n})`;
        const next = `(case when auth_failures.window_start <= ${n} then 1 else auth_failures.failures + 1 end)`;
        const row = (await fastQuery(
          knex,
          `insert into auth_failures (scope, key, failures, window_start, locked_until)
           values (?, ?, 1, ${n}, case when 1 > ${n} then ${n} else null end)
           on conflict (scope, key) do update set
             failures = case when ${locked} then auth_failures.failures else ${next} end,
             window_start = case when ${locked} then auth_failures.window_start
               when auth_failures.window_start <= ${n} then ${n} else auth_failures.window_start end,
             locked_until = case when ${locked} then auth_failures.locked_until
               when ${next} > ${n} then ${n} else null end
           returning failures, locked_until`,
          [scope, key, now, max(scope), now + lockMs, now, stale, now, stale, now, now, stale, max(scope), now + lockMs],
          'first',
        )) as { failures: number; locked_until: number | null } | undefined;
        counts.push(Number(row?.failures ?? 0));
        const lockedUntil = row?.locked_until === null || row?.locked_until === undefined ? 0 : Number(row.locked_until);
        if (lockedUntil > now) until = Math.max(until, lockedUntil);
      }
      return { retryAfter: until > now ? Math.ceil((until - now) / 1000) : 0, counts };
    },

    /** After a failed check: locks the keys whose reserved count reached the limit; says which. */
    async lockReached(keys: Array<[ThrottleScope, string]>, counts: number[], now = Date.now()): Promise<ThrottleScope[]> {
      const locked: ThrottleScope[] = [];
      for (const [i, [scope, key]] of keys.entries()) {
        if ((counts[i] ?? 0) < max(scope)) continue;
        await knex('auth_failures')
          .where({ scope, key })
          .andWhere((q) => q.whereNull('locked_until').orWhere('locked_until', '<=', now))
          .update({ locked_until: now + lockMs });
        locked.push(scope);
      }
      return locked;
    },

    /** Takes back a reserved attempt that turned out to be a success (for counters a success does not clear). */
    async release(scope: ThrottleScope, key: string): Promise<void> {
      await fastQuery(knex, 'update auth_failures set failures = failures - 1 where scope = ? and key = ? and failures > 0', [scope, key], 'run');
    },

    /** Forgets an account's failures after a successful login. */
    async clear(scope: ThrottleScope, key: string): Promise<void> {
      await fastQuery(knex, 'delete from auth_failures where scope = ? and key = ?', [scope, key], 'run');
    },

    /** Deletes counters whose window and lock have both run out. */
    async sweep(now = Date.now()): Promise<number> {
      return knex('auth_failures')
        .where('window_start', '<=', now - windowMs)
        .andWhere((q) => q.whereNull('locked_until').orWhere('locked_until', '<=', now))
        .delete();
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
