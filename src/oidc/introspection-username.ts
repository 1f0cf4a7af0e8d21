import type Provider from 'oidc-provider';
import type { UserRepository } from '../storage/users.js';

/**
 * RFC 7662 names `username` among the optional members of an introspection answer, and
 * django-oauth-toolkit always sent it: resource servers written against DOT read it. An
 * active token that acts for a person gets their current username (`sub` is their id);
 * inactive answers stay `{"active": false}`.
 */
export function introspectionCarriesUsername(provider: Provider, users: UserRepository): void {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route !== 'introspection' || !ctx.body || typeof ctx.body !== 'object') return;
    const body = ctx.body as Record<string, unknown>;
    if (body['active'] !== true || typeof body['sub'] !== 'string' || 'username' in body) return;
    const user = await users.findById(body['sub']);
    if (user) body['username'] = user.username;
  });
}
