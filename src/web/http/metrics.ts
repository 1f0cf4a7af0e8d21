import { timingSafeEqual } from 'node:crypto';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { Middleware } from 'koa';
import type { Metrics } from '../../observability/metrics.js';

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

/** Counts and times every request (outermost middleware). */
export function metricsMiddleware({ latency, requests }: Metrics): Middleware {
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
}

/**
 * GET /metrics in the Prometheus text format: with a token configured, only for its
 * bearer; without one, only for callers on this machine.
 */
export function metricsEndpoint({ registry }: Metrics, token: string | undefined): Middleware {
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
}
