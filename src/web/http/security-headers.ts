import type { Middleware } from 'koa';

/**
 * Headers for everything we and the provider serve. Set before `next()` so the provider's
 * form_post page can add its inline script hash to our CSP instead of being blocked by it.
 * No form-action directive: browsers apply it to the redirect that follows a login or
 * consent form, which must be allowed to reach any registered client.
 */
export function securityHeaders({ https }: { https: boolean }): Middleware {
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return async (ctx, next) => {
    ctx.set('Content-Security-Policy', csp);
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    if (https) ctx.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    await next();
  };
}
