import compose from 'koa-compose';
import type { Middleware } from 'koa';
import type Provider from 'oidc-provider';
import { providerPathFor } from './dot-path-aliases.js';
import { refuseNulInProviderBody } from './nul-bytes.js';

/**
 * Runs the provider's middleware for requests under `prefix` on our own Koa context (as
 * koa-mount does), resolving the provider per request because key rotation replaces it.
 * Our app therefore needs the same `keys` as the provider's cookies.keys.
 */
export function mountProvider(prefix: string, current: () => Provider): Middleware {
  type Composed = (ctx: unknown, next: () => Promise<void>) => Promise<void>;
  const composed = new WeakMap<Provider, Composed>();
  return async (ctx, upstream) => {
    const original = ctx.path;
    let inner: string;
    if (original === prefix) inner = '/';
    else if (original.startsWith(`${prefix}/`)) inner = providerPathFor(original.slice(prefix.length));
    else return upstream();
    await refuseNulInProviderBody(ctx);

    const provider = current();
    let downstream = composed.get(provider);
    if (!downstream) {
      downstream = compose(provider.middleware as never) as Composed;
      composed.set(provider, downstream);
    }
    const run = downstream;
    ctx.mountPath = prefix;
    ctx.path = inner;
    try {
      await run(ctx, async () => {
        ctx.path = original;
        await upstream();
        ctx.path = inner;
      });
    } finally {
      ctx.path = original;
    }
  };
}
