import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The database pool's connections by state (src/storage/pool-stats.ts reads them). */
export interface DatabasePool {
  used: number;
  free: number;
  pending: number;
}

/**
 * Prometheus metrics for one Latchkey instance (its own registry, so several instances can
 * live in one process in tests): requests and latency per route group, tokens per grant
 * type, logins, lockouts, hashing queue, event-loop lag (default metrics), database pool,
 * and the expired-row sweeper.
 */
export function createMetrics({ pool, hashQueue }: { pool: () => DatabasePool | undefined; hashQueue: () => number }) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'latchkey_' });

  const requests = new Counter({
    name: 'latchkey_http_requests_total',
    help: 'HTTP requests by route group, method and status class',
    labelNames: ['group', 'method', 'status'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'latchkey_http_request_duration_seconds',
    help: 'HTTP request latency by route group',
    labelNames: ['group'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const tokens = new Counter({
    name: 'latchkey_tokens_issued_total',
    help: 'Successful token endpoint responses by grant type',
    labelNames: ['grant_type'] as const,
    registers: [registry],
  });
  const logins = new Counter({
    name: 'latchkey_logins_total',
    help: 'Password checks by result (success, failure, throttled)',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const lockouts = new Counter({ name: 'latchkey_lockouts_total', help: 'Accounts or IPs locked after too many failures', registers: [registry] });
  const sweeps = new Counter({ name: 'latchkey_sweeps_total', help: 'Expired-row sweeps this process ran', registers: [registry] });
  const swept = new Counter({ name: 'latchkey_swept_rows_total', help: 'Rows the sweeper deleted', registers: [registry] });
  const sweepSeconds = new Histogram({
    name: 'latchkey_sweep_duration_seconds',
    help: 'How long a sweep took',
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [registry],
  });
  new Gauge({
    name: 'latchkey_hash_pool_queue_length',
    help: 'Password hashing tasks waiting for a worker thread',
    registers: [registry],
    collect() {
      this.set(hashQueue());
    },
  });
  new Gauge({
    name: 'latchkey_db_pool_connections',
    help: 'Database pool connections by state',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const stats = pool();
      if (!stats) return;
      this.set({ state: 'used' }, stats.used);
      this.set({ state: 'free' }, stats.free);
      this.set({ state: 'pending' }, stats.pending);
    },
  });

  return {
    registry,
    /** Requests and latency per route group: the web edge's middleware counts them. */
    requests,
    latency,
    tokens,
    logins,
    lockouts,
    sweeps,
    swept,
    sweepSeconds,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
