import { timingSafeEqual } from 'node:crypto';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { Knex } from 'knex';
import type { Middleware } from 'koa';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Which family a path belongs to; labels stay few so the series stay few. */
export function routeGroup(path: string): string {
  if (path === '/o/token') return 'oidc_token';
  if (path.startsWith('/o/')) return 'oidc';
  if (path.startsWith('/interaction/')) return 'interaction';
  if (path.startsWith('/api/') || path.startsWith('/auth/') || path.startsWith('/users/')) return 'api';
  if (path.startsWith('/admin')) return 'admin';
  if (path.startsWith('/health')) return 'health';
  if (path === '/metrics') return 'metrics';
  return 'other';
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** 127.0.0.0/8 and ::1; BlockList also matches their IPv4-mapped IPv6 forms (::ffff:127.0.0.1). */
function isLoopback(ip: string): boolean {
  const family = isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : undefined;
  return family !== undefined && LOOPBACK.check(ip, family);
}

/**
 * Prometheus metrics for one Latchkey instance (its own registry, so several instances can
 * live in one process in tests): requests and latency per route group, tokens per grant
 * type, logins, lockouts, hashing queue, event-loop lag (default metrics), database pool,
 * and the expired-row sweeper.
 */
export function createMetrics({ knex, hashQueue }: { knex: Knex; hashQueue: () => number }) {
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
  const pool = () => (knex.client as { pool?: { numUsed(): number; numFree(): number; numPendingAcquires(): number } }).pool;
  new Gauge({
    name: 'latchkey_db_pool_connections',
    help: 'Database pool connections by state',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const p = pool();
      if (!p) return;
      this.set({ state: 'used' }, p.numUsed());
      this.set({ state: 'free' }, p.numFree());
      this.set({ state: 'pending' }, p.numPendingAcquires());
    },
  });

  return {
    registry,
    tokens,
    logins,
    lockouts,
    sweeps,
    swept,
    sweepSeconds,

    /** Counts and times every request (outermost middleware). */
    middleware(): Middleware {
      return async (ctx, next) => {
        const group = routeGroup(ctx.path);
        const stop = latency.startTimer({ group });
        try {
          await next();
        } finally {
          stop();
          requests.inc({ group, method: ctx.method, status: `${Math.floor(ctx.status / 100)}xx` });
        }
      };
    },

    /**
     * GET /metrics in the Prometheus text format: with a token configured, only for its
     * bearer; without one, only for callers on this machine.
     */
    endpoint(token: string | undefined): Middleware {
      return async (ctx, next) => {
        if (ctx.path !== '/metrics' || ctx.method !== 'GET') return next();
        if (!token && !isLoopback(ctx.ip)) {
          // ctx.ip is the forwarded client address behind TRUST_PROXY: a proxy on this
          // machine does not make everyone it forwards local.
          ctx.status = 403;
          ctx.set('Cache-Control', 'no-store');
          ctx.body = { error: 'access_denied', error_description: 'Without METRICS_TOKEN, /metrics answers only callers on this machine.' };
          return;
        }
        if (token) {
          const given = Buffer.from(/^Bearer\s+(\S+)$/i.exec(ctx.get('authorization'))?.[1] ?? '');
          const expected = Buffer.from(token);
          if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
            ctx.status = 401;
            ctx.set('WWW-Authenticate', 'Bearer realm="metrics"');
            ctx.body = { error: 'invalid_token', error_description: 'The metrics token is missing or wrong.' };
            return;
          }
        }
        ctx.type = registry.contentType;
        ctx.set('Cache-Control', 'no-store');
        ctx.body = await registry.metrics();
      };
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
