import type { Context, Next } from 'koa';
import { HttpMethodEnum, koaBody } from 'koa-body';
import { ApiError } from '../../errors.js';
import { refuseNulFields } from '../http/nul-bytes.js';

/**
 * Body parsing for one route group (never in front of the provider, which reads its own
 * bodies). Malformed or oversized bodies become a JSON 400/413 instead of a bare error.
 */
function parser(options: Parameters<typeof koaBody>[0]) {
  const parse = koaBody(options);
  return async (ctx: Context, next: Next) => {
    try {
      await parse(ctx, async () => {});
    } catch (error) {
      const status = (error as { status?: number }).status;
      if (status === 413) throw new ApiError(413, 'invalid_request', 'The request body is too large.');
      throw new ApiError(400, 'invalid_request', 'The request body could not be parsed.');
    }
    refuseNulFields(ctx.request.body);
    const body = ctx.request.body as unknown;
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
      ctx.request.body = {};
      if (ctx.request.length && !['GET', 'HEAD', 'DELETE'].includes(ctx.method)) {
        throw new ApiError(400, 'invalid_request', 'The request body must be an object.');
      }
    }
    return next();
  };
}

/** JSON or form-urlencoded bodies: DRF clients send either, the old provider's endpoints forms. */
export const parseBody = parser({ json: true, urlencoded: true, text: false, multipart: false, jsonLimit: '64kb', formLimit: '64kb' });

/**
 * {@link parseBody} for a DELETE that carries its proof in the body (DELETE
 * /api/me/two-factor/ with the password and a code): koa-body leaves DELETE bodies alone
 * unless told.
 */
export const parseDeleteBody = parser({
  json: true,
  urlencoded: true,
  text: false,
  multipart: false,
  jsonLimit: '64kb',
  formLimit: '64kb',
  parsedMethods: [HttpMethodEnum.DELETE],
});

export function bodyOf(ctx: Context): Record<string, unknown> {
  return ctx.request.body as Record<string, unknown>;
}
