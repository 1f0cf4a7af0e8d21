import type { Middleware } from 'koa';
import type { ClientRepository } from '../repositories/clients.js';

/**
 * RFC 7592 read and update responses would echo the provider's view of `client_secret`,
 * which for us is the stored hash, not the secret. A secret is shown once, at registration
 * (or when an update creates one), so the hash is removed from those answers.
 */
export function hideStoredSecrets(clients: ClientRepository, prefix: string): Middleware {
  return async (ctx, next) => {
    await next();
    if (!ctx.path.startsWith(`${prefix}/reg/`) || (ctx.method !== 'GET' && ctx.method !== 'PUT')) return;
    const body = ctx.body as Record<string, unknown> | undefined;
    if (!body || typeof body !== 'object' || typeof body['client_secret'] !== 'string' || typeof body['client_id'] !== 'string') return;
    const stored = await clients.findProviderMetadata(body['client_id']);
    if (stored?.['client_secret'] === body['client_secret']) {
      delete body['client_secret'];
      delete body['client_secret_expires_at'];
    }
  };
}
