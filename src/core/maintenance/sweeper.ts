import type { Knex } from 'knex';
import type { LoginThrottle } from '../accounts/login-throttle.js';
import type { Metrics } from '../../observability/metrics.js';
import { claimLease } from '../../storage/app-lock.js';
import { sweepAll } from './sweep.js';

const LEASE = 'sweeper';

/**
 * Deletes expired rows, in one process at a time: each run first claims a lease row in
 * app_locks, which only succeeds when the last claim is older than most of an interval, so
 * N processes on one database sweep about once per interval between them.
 */
export function createSweeper({ knex, intervalSeconds, throttle, metrics }: { knex: Knex; intervalSeconds: number; throttle: LoginThrottle; metrics: Metrics }) {
  async function claim(now: number): Promise<boolean> {
    const cutoff = now - Math.max(1, intervalSeconds) * 900; // 90% of an interval, in ms
    return claimLease(knex, LEASE, now, cutoff);
  }

  return {
    /** Sweeps everything now, whoever holds the lease (the CLI's cleanup, tests). */
    async sweepNow(): Promise<number> {
      const stop = metrics.sweepSeconds.startTimer();
      const result = await sweepAll(knex);
      const rows =
        result.expired_rows_deleted +
        result.api_refresh_tokens_deleted +
        result.retired_keys_deleted +
        result.email_tokens_deleted +
        (await throttle.sweep());
      stop();
      metrics.sweeps.inc();
      metrics.swept.inc(rows);
      return rows;
    },

    /** The periodic run: sweeps only if this process won the lease; returns rows or undefined. */
    async runIfDue(now = Date.now()): Promise<number | undefined> {
      if (!(await claim(now))) return undefined;
      return this.sweepNow();
    },
  };
}

export type Sweeper = ReturnType<typeof createSweeper>;
