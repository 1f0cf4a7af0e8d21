import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';

const COOKIE = 'lk.csrf';

/**
 * Double-submit CSRF protection with a signed, HttpOnly, SameSite=Strict cookie: the form
 * carries the cookie's value, which a page on another origin can neither read nor forge.
 */
export function csrfToken(ctx: Context, { secure }: { secure: boolean }): string {
  let token = ctx.cookies.get(COOKIE, { signed: true });
  if (!token || !/^[A-Za-z0-9_-]{43}$/.test(token)) {
    token = randomBytes(32).toString('base64url');
    ctx.cookies.set(COOKIE, token, { signed: true, httpOnly: true, sameSite: 'strict', secure, path: '/', overwrite: true });
  }
  return token;
}

/** True when the submitted token equals the one in this browser's cookie. */
export function csrfValid(ctx: Context, submitted: unknown): boolean {
  const expected = ctx.cookies.get(COOKIE, { signed: true });
  if (!expected || typeof submitted !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(submitted);
  return a.length === b.length && timingSafeEqual(a, b);
}
