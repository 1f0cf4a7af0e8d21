import type { Context, Middleware, Next } from 'koa';
import { koaBody } from 'koa-body';
import { ApiError } from '../../errors.js';
import { refuseNulFields } from './nul-bytes.js';
import { csrfValid } from './csrf.js';

/**
 * koa-body for forms, with parse failures answered as 400/413 instead of a 500, and fields
 * holding a NUL byte as a 400 naming them.
 */
export function formParser({ limit = '64kb' }: { limit?: string } = {}): Middleware {
  const parse = koaBody({ urlencoded: true, json: false, multipart: false, text: false, formLimit: limit });
  return async (ctx: Context, next: Next) => {
    try {
      await parse(ctx, async () => {});
    } catch (error) {
      if ((error as { status?: number }).status === 413) throw new ApiError(413, 'invalid_request', 'The form is too large.');
      throw new ApiError(400, 'invalid_request', 'The form could not be read.');
    }
    refuseNulFields(ctx.request.body);
    const body = ctx.request.body as unknown;
    if (!body || typeof body !== 'object' || Array.isArray(body)) ctx.request.body = {};
    return next();
  };
}

/** The parsed form of a request that went through {@link formParser}. */
export function formOf(ctx: Context): Record<string, unknown> {
  return ctx.request.body as Record<string, unknown>;
}

/** True when the form carries this browser's CSRF token. */
export function csrfOk(ctx: Context): boolean {
  return csrfValid(ctx, formOf(ctx)['csrf']);
}

/** A form field as text ('' when absent or not a single value). */
export function text(body: Record<string, unknown>, key: string): string {
  const value = body[key];
  return typeof value === 'string' ? value : '';
}
