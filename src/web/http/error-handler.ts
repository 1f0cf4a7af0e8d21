import type { Middleware } from 'koa';
import { DomainError } from '../../core/errors.js';
import { ApiError } from '../../errors.js';
import { restError } from './error-mapping.js';
import { answersWithPage, renderErrorPage } from './error-pages.js';
import type { Views } from './views.js';

/**
 * Our ApiErrors and the provider's OAuth errors keep their status and code, the services'
 * refusals get theirs (error-mapping.ts); the rest is a 500.
 */
function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof DomainError) return restError(error);
  const oauth = error as { status?: unknown; error?: unknown; error_description?: unknown; expose?: unknown };
  if (typeof oauth.status === 'number' && oauth.status >= 400 && oauth.status < 500 && typeof oauth.error === 'string' && oauth.expose) {
    return new ApiError(oauth.status, oauth.error, typeof oauth.error_description === 'string' ? oauth.error_description : oauth.error);
  }
  return new ApiError(500, 'server_error', 'An unexpected error occurred.');
}

/**
 * Last line of defence for our own routes (the provider handles its own errors): an
 * ApiError keeps its status and code, a DomainError gets its own; anything else is logged and answered as a 500
 * without internals, in JSON for API clients and as a page for browsers.
 */
export function errorHandler(views: Views, log: (message: string, error: unknown) => void): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      const apiError = toApiError(error);
      if (apiError.status >= 500) log(`unhandled error on ${ctx.method} ${ctx.path}`, error);
      ctx.status = apiError.status;
      ctx.set('Cache-Control', 'no-store');
      // A lockout (TooManyAttempts) says when to come back.
      const retryAfter = (error as { retryAfter?: unknown }).retryAfter;
      if (apiError.status === 429 && typeof retryAfter === 'number') ctx.set('Retry-After', String(retryAfter));
      // Pages for browsers (which name text/html explicitly); JSON for API paths and the rest.
      if (answersWithPage(ctx)) {
        ctx.type = 'html';
        ctx.body = renderErrorPage(ctx, views, apiError.status, apiError.error, apiError.message);
      } else {
        ctx.body = apiError.toJSON();
      }
    }
  };
}
