import type { Knex } from 'knex';

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
 * Counts failed password checks per account and per client IP in the database, so limits
 * hold across restarts and across every process on one PostgreSQL. Reaching the limit
 * within the window locks that key for `lockoutSeconds`; each failure while locked extends
 * nothing (the lock simply runs out), and a success clears the account's counter.
 */
export function createLoginThrottle(knex: Knex, policy: ThrottlePolicy) {
  const windowMs = policy.windowSeconds * 1000;
  const lockMs = policy.lockoutSeconds * 1000;
  const max = (scope: ThrottleScope) => (scope === 'account' ? policy.accountMax : policy.ipMax);

  return {
    policy,

    /** Seconds until every given key is free again; 0 when none is locked. */
    async retryAfter(keys: Array<[ThrottleScope, string]>, now = Date.now()): Promise<number> {
      if (keys.length === 0) return 0;
      const rows = (await knex('auth_failures')
        .where((q) => {
          for (const [scope, key] of keys) q.orWhere({ scope, key });
        })
        .andWhere('locked_until', '>', now)
        .select('locked_until')) as Array<{ locked_until: number }>;
      const until = Math.max(0, ...rows.map((r) => Number(r.locked_until)));
      return until > now ? Math.ceil((until - now) / 1000) : 0;
    },

    /**
     * Counts one failure (one atomic upsert per key) and says which keys it locked.
     * A window that has run out starts again at 1.
     */
    async recordFailure(keys: Array<[ThrottleScope, string]>, now = Date.now()): Promise<ThrottleScope[]> {
      const locked: ThrottleScope[] = [];
      for (const [scope, key] of keys) {
        const stale = now - windowMs;
        // Every number is cast: PostgreSQL cannot infer parameter types inside CASE.
        const n = 'cast(? as bigint)';
        const result = (await knex.raw(
          `insert into auth_failures (scope, key, failures, window_start, locked_until)
           values (?, ?, 1, ${n}, case when 1 >= ${n} then ${n} else null end)
           on conflict (scope, key) do update set
             failures = case when auth_failures.window_start <= ${n} then 1 else auth_failures.failures + 1 end,
             window_start = case when auth_failures.window_start <= ${n} then ${n} else auth_failures.window_start end,
             locked_until = case
               when auth_failures.locked_until is not null and auth_failures.locked_until > ${n} then auth_failures.locked_until
               when (case when auth_failures.window_start <= ${n} then 1 else auth_failures.failures + 1 end) >= ${n} then ${n}
               else null end
           returning failures, locked_until`,
          [scope, key, now, max(scope), now + lockMs, stale, stale, now, now, stale, max(scope), now + lockMs],
        )) as { rows?: Array<{ locked_until: number | null }> } | Array<{ locked_until: number | null }>;
        const rows = Array.isArray(result) ? result : (result.rows ?? []);
        const until = rows[0]?.locked_until;
        if (until !== null && until !== undefined && Number(until) > now) locked.push(scope);
      }
      return locked;
    },

    /** Forgets an account's failures after a successful login. */
    async clear(scope: ThrottleScope, key: string): Promise<void> {
      await knex('auth_failures').where({ scope, key }).delete();
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
