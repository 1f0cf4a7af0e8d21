import type { Knex } from 'knex';
import type { LoginThrottle } from '../accounts/login-throttle.js';
import type { Metrics } from '../../observability/metrics.js';
import { claimLease } from '../../storage/app-lock.js';
import { sweepAll, type SweepResult } from './sweep.js';

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

  /** One sweep of every table; the throttle's counters are swept too, counted only in `rows`. */
  async function sweep(): Promise<{ byKind: SweepResult; rows: number }> {
    const stop = metrics.sweepSeconds.startTimer();
    const byKind = await sweepAll(knex);
    const rows =
      byKind.expired_rows_deleted + byKind.api_refresh_tokens_deleted + byKind.retired_keys_deleted + byKind.email_tokens_deleted + (await throttle.sweep());
    stop();
    metrics.sweeps.inc();
    metrics.swept.inc(rows);
    return { byKind, rows };
  }

  return {
    /** Sweeps everything now, whoever holds the lease (tests); returns rows removed. */
    async sweepNow(): Promise<number> {
      return (await sweep()).rows;
    },

    /** Sweeps everything now, whoever holds the lease, and says what by kind (the CLI's cleanup). */
    async sweepReport(): Promise<SweepResult> {
      return (await sweep()).byKind;
    },

    /** The periodic run: sweeps only if this process won the lease; returns rows or undefined. */
    async runIfDue(now = Date.now()): Promise<number | undefined> {
      if (!(await claim(now))) return undefined;
      return this.sweepNow();
    },
  };
}

export type Sweeper = ReturnType<typeof createSweeper>;
