import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * JSON lines on stdout (one per request plus events), pretty-printed when stdout is a
 * terminal. Nothing here ever logs a body, a query string, a cookie or an Authorization
 * header: paths only, so codes and tokens in URLs stay out too.
 */
export function createLogger({ level, pretty = Boolean(process.stdout.isTTY) }: { level: string; pretty?: boolean }): Logger {
  return pino({
    level,
    base: { service: 'latchkey' },
    redact: { paths: ['*.password', '*.client_secret', '*.token', '*.authorization', '*.cookie'], censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
  });
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Gives each request an id (a sane incoming X-Request-Id is kept), echoes it, logs one line. */
export function requestLog(logger: Logger): Middleware {
  return async (ctx, next) => {
    const incoming = ctx.get('x-request-id');
    const id = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state['requestId'] = id;
    ctx.set('X-Request-Id', id);
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const status = ctx.status;
      const line = { reqId: id, method: ctx.method, path: ctx.path, status, ms: Math.round(ms * 10) / 10, ip: ctx.ip };
      if (status >= 500) logger.error(line, 'request');
      else logger.info(line, 'request');
    }
  };
}
