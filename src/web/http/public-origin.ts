import type { Context, Middleware } from 'koa';

/**
 * Makes every request look as if it was addressed to PUBLIC_URL, before anything reads it.
 *
 * The provider builds every URL it emits (discovery, redirects, `registration_client_uri`,
 * the DPoP `htu` it expects) from the request's protocol and host, which come from the Host
 * header, or from X-Forwarded-Host/Proto behind a trusted proxy. Those are the client's to
 * choose: `Host: evil.example` would otherwise rewrite discovery (and anything a cache keeps
 * of it). So the headers are overwritten with PUBLIC_URL's own; the provider's inner Koa
 * contexts (its cookies) read the same `req.headers`, and X-Forwarded-For is left alone, so
 * the client address and TRUST_PROXY's rules for it stay as they were.
 */
export function publicOrigin(publicUrl: string): Middleware {
  const { host, protocol } = new URL(publicUrl);
  const proto = protocol.slice(0, -1);
  return async (ctx, next) => {
    const headers = ctx.req.headers;
    headers.host = host;
    // HTTP/2 requests name their authority here, which Koa prefers to Host.
    delete headers[':authority'];
    // Set whether the proxy is trusted or not: whoever reads them gets PUBLIC_URL's.
    headers['x-forwarded-host'] = host;
    headers['x-forwarded-proto'] = proto;
    toOriginForm(ctx);
    return next();
  };
}

/**
 * `GET http://evil.example/o/... HTTP/1.1` (absolute-form, RFC 9112 3.2.2) is legal, and Koa
 * then takes the whole URL, host included, as the request's `href`: keep only path and query.
 */
function toOriginForm(ctx: Context): void {
  const target = ctx.req.url ?? '/';
  if (target.startsWith('/')) return;
  const parsed = URL.parse(target);
  if (!parsed || !/^https?:$/.test(parsed.protocol)) return;
  const path = `${parsed.pathname}${parsed.search}`;
  ctx.url = path;
  ctx.originalUrl = path;
  ctx.request.originalUrl = path;
}
