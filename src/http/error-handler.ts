import type { Middleware } from 'koa';
import { ApiError } from '../errors.js';
import type { Views } from './views.js';

/**
 * Last line of defence for our own routes (the provider handles its own errors): an
 * ApiError keeps its status and code; anything else is logged and answered as a 500
 * without internals, in JSON for API clients and as a page for browsers.
 */
export function errorHandler(views: Views, log: (message: string, error: unknown) => void): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      const known = error instanceof ApiError;
      if (!known) log(`unhandled error on ${ctx.method} ${ctx.path}`, error);
      const apiError = known ? error : new ApiError(500, 'server_error', 'An unexpected error occurred.');
      ctx.status = apiError.status;
      ctx.set('Cache-Control', 'no-store');
      if (ctx.accepts('html', 'json') === 'html') {
        ctx.type = 'html';
        ctx.body = views.render('error', { title: 'Something went wrong', error: apiError.error, description: apiError.message, csrf: '' });
      } else {
        ctx.body = apiError.toJSON();
      }
    }
  };
}
