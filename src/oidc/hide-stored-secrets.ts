import type { Middleware } from 'koa';
import { clientSecretMatches, type ClientRepository } from '../storage/clients.js';

const MAX_BODY = 56 * 1024;

/** Reads a JSON request body (the provider's own limit); undefined when it is not JSON. */
async function readJson(req: NodeJS.ReadableStream): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * RFC 7592 read and update responses would echo the provider's view of `client_secret`,
 * which for us is the stored hash, not the secret. A secret is shown once, at registration
 * (or when an update creates one), so the hash is removed from those answers.
 */
export function hideStoredSecrets(clients: ClientRepository, prefix: string): Middleware {
  return async (ctx, next) => {
    if (!ctx.path.startsWith(`${prefix}/reg/`) || (ctx.method !== 'GET' && ctx.method !== 'PUT')) return next();
    // RFC 7592 section 2.2: an update may carry the current client_secret, which must match.
    // The provider compares it with what it holds, the hash, so a matching secret is swapped
    // for the hash before the provider reads the body (from ctx.request.body, once consumed).
    if (ctx.method === 'PUT' && ctx.is('application/json')) {
      const parsed = await readJson(ctx.req);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
        const update = parsed as Record<string, unknown>;
        const stored = await clients.findProviderMetadata(ctx.path.slice(`${prefix}/reg/`.length));
        const hash = stored?.['client_secret'];
        if (typeof update['client_secret'] === 'string' && typeof hash === 'string' && clientSecretMatches(hash, update['client_secret'])) {
          update['client_secret'] = hash;
        }
      }
      ctx.request.body = parsed as typeof ctx.request.body;
    }
    await next();
    const body = ctx.body as Record<string, unknown> | undefined;
    if (!body || typeof body !== 'object' || typeof body['client_secret'] !== 'string' || typeof body['client_id'] !== 'string') return;
    const stored = await clients.findProviderMetadata(body['client_id']);
    if (stored?.['client_secret'] === body['client_secret']) {
      delete body['client_secret'];
      delete body['client_secret_expires_at'];
    }
  };
}
