import * as querystring from 'node:querystring';
import type { Context, Middleware } from 'koa';
import { ApiError, requestFields } from '../../errors.js';

/** The provider's own body limit (node-oidc-provider's selective_body.js): larger bodies get a 413 here. */
const PROVIDER_BODY_LIMIT = 56 * 1024;

const NUL_REFUSED = 'Request parameters must not contain NUL characters.';

/** True when any string in a parsed value (keys included) holds a NUL byte. */
export function holdsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (Array.isArray(value)) return value.some(holdsNul);
  if (value && typeof value === 'object') return Object.entries(value).some(([key, inner]) => key.includes('\u0000') || holdsNul(inner));
  return false;
}

async function readRaw(ctx: Context): Promise<Buffer> {
  const declared = ctx.request.length;
  if (declared !== undefined && declared > PROVIDER_BODY_LIMIT) throw new ApiError(413, 'invalid_request', 'The request body is too large.');
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of ctx.req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > PROVIDER_BODY_LIMIT) throw new ApiError(413, 'invalid_request', 'The request body is too large.');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, received);
}

/**
 * Lets the provider read a body we read first: its body parser reads `req` as a stream
 * (`readable`, `iterator`), so the request replays the bytes we took. (Its fallback for
 * pre-parsed bodies would work too, but warns on every process's first request.)
 */
function replay(ctx: Context, body: Buffer): void {
  Object.defineProperty(ctx.req, 'readable', { value: true, configurable: true });
  ctx.req.iterator = async function* iterate() {
    yield body;
  } as typeof ctx.req.iterator;
}

/**
 * Refuses requests whose path or query holds a NUL byte, on every route: no URL we serve
 * means anything with one, PostgreSQL refuses them in text (a 500 once the value reached a
 * query: a search, a token in a link) and SQLite stores them. 400 invalid_request, the OAuth
 * error shape, which the provider's endpoints use too.
 */
export function refuseNulInUrl(): Middleware {
  return async (ctx, next) => {
    let path: string;
    try {
      path = decodeURIComponent(ctx.path);
    } catch {
      throw new ApiError(400, 'invalid_request', 'The request path could not be decoded.');
    }
    if (path.includes('\u0000') || holdsNul(querystring.parse(ctx.querystring))) throw new ApiError(400, 'invalid_request', NUL_REFUSED);
    await next();
  };
}

/**
 * The same for the bodies of the provider's endpoints (form or JSON), before the provider
 * reads them: no OAuth parameter may hold a NUL (RFC 6749 Appendix A). A body over the
 * provider's limit is a 413 in the same shape. Our own routes check their parsed bodies
 * (body.ts, forms.ts).
 */
export async function refuseNulInProviderBody(ctx: Context): Promise<void> {
  if (!ctx.req.readable || !ctx.is('application/x-www-form-urlencoded', 'application/json')) return;
  const body = await readRaw(ctx);
  replay(ctx, body);
  if (body.includes(0)) throw new ApiError(400, 'invalid_request', NUL_REFUSED);
  let parsed: unknown;
  if (ctx.is('application/json')) {
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return; // the provider answers unparsable JSON itself
    }
  } else {
    parsed = querystring.parse(body.toString('utf8'));
  }
  if (holdsNul(parsed)) throw new ApiError(400, 'invalid_request', NUL_REFUSED);
}

/**
 * For our own routes' parsed bodies: a field holding a NUL byte is a 400 naming it (as Django
 * REST framework lists a bad field), before any service or query sees it.
 */
export function refuseNulFields(body: unknown): void {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return;
  const bad = Object.entries(body).filter(([key, value]) => key.includes('\u0000') || holdsNul(value));
  if (bad.length) throw requestFields(Object.fromEntries(bad.map(([key]) => [key.replace(/\u0000/g, '\\0'), ['Must not contain NUL characters.']])));
}
