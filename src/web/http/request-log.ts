import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from '../../observability/logger.js';

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
