import type { Context } from 'koa';
import type { AuditActor } from '../../core/audit/audit-log.js';
import { clientJson, type ClientService } from '../../core/clients/client-service.js';
import { ApiError } from '../../errors.js';
import { type BearerResolver } from './bearer-auth.js';
import { ClientCreateSchema, ClientIdParams, ClientPageSchema, ClientSchema, ClientWriteSchema, newClientOf } from './clients-schemas.js';
import { apiRouter, operation, type ApiRouter } from './operation.js';
import { pageLinks } from './pagination.js';
import { requireUser } from './route-guard.js';
import { PageQuery } from './schemas.js';

/** The staff member acting, for the audit log. */
function by(ctx: Context): AuditActor {
  const user = requireUser(ctx);
  return { label: user.username, userId: user.id, ip: ctx.ip };
}

const TAGS = ['clients'];
const rule = { scope: 'admin' } as const;
const NOT_FOUND = 'No such client.';
const BUILT_IN = 'A built-in client cannot be changed or deleted.';

/**
 * /api/clients/: staff manage OAuth clients over REST. Secrets appear in a response only
 * when one is created (registration, rotation, switch to confidential).
 */
export function createClientsRouter({ clientService, resolveBearer, publicUrl }: { clientService: ClientService; resolveBearer: BearerResolver; publicUrl: string }): ApiRouter {
  const withSecret = (json: ReturnType<typeof clientJson>, secret: string | null) => (secret ? { ...json, client_secret: secret } : json);

  return apiRouter(
    [
      operation({
        operationId: 'listClients',
        method: 'get',
        path: '/api/clients/',
        summary: 'List OAuth clients (staff)',
        tags: TAGS,
        group: 'staff',
        rule,
        query: PageQuery,
        success: { status: 200, description: 'A page of clients', schema: ClientPageSchema },
        errors: { 404: 'Page past the end.' },
        handler: async (ctx, { query: { page, page_size: pageSize } }) => {
          const all = await clientService.list();
          const results = all.slice((page - 1) * pageSize, page * pageSize);
          if (page > 1 && results.length === 0) throw new ApiError(404, 'not_found', 'Invalid page.');
          return { count: all.length, ...pageLinks(ctx, `${publicUrl}/api/clients/`, page, pageSize, all.length), results: results.map(clientJson) };
        },
      }),
      operation({
        operationId: 'createClient',
        method: 'post',
        path: '/api/clients/',
        summary: 'Register a client (staff); the secret is in this response only',
        tags: TAGS,
        group: 'staff',
        rule,
        body: ClientCreateSchema,
        success: { status: 201, description: 'Created', schema: ClientSchema },
        handler: async (ctx, { body }) => {
          const { client, clientSecret } = await clientService.register({ ...newClientOf(body), name: body.client_name }, by(ctx));
          ctx.set('Location', `/api/clients/${client.clientId}/`);
          ctx.set('Cache-Control', 'no-store');
          return withSecret(clientJson(client), clientSecret);
        },
      }),
      operation({
        operationId: 'getClient',
        method: 'get',
        path: '/api/clients/{clientId}/',
        summary: 'Read a client (staff)',
        tags: TAGS,
        group: 'staff',
        rule,
        params: ClientIdParams,
        success: { status: 200, description: 'The client', schema: ClientSchema },
        errors: { 404: NOT_FOUND },
        handler: async (_ctx, { params }) => clientJson(await clientService.get(params.clientId)),
      }),
      operation({
        operationId: 'updateClient',
        method: 'patch',
        path: '/api/clients/{clientId}/',
        summary: 'Change a client (staff); switching to confidential returns a new secret',
        tags: TAGS,
        group: 'staff',
        rule,
        params: ClientIdParams,
        body: ClientWriteSchema,
        success: { status: 200, description: 'Updated', schema: ClientSchema },
        errors: { 403: BUILT_IN, 404: NOT_FOUND },
        handler: async (ctx, { params, body }) => {
          const { client, clientSecret } = await clientService.update(params.clientId, newClientOf(body), by(ctx));
          ctx.set('Cache-Control', 'no-store');
          return withSecret(clientJson(client), clientSecret);
        },
      }),
      operation({
        operationId: 'deleteClient',
        method: 'delete',
        path: '/api/clients/{clientId}/',
        summary: 'Delete a client and revoke its tokens (staff)',
        tags: TAGS,
        group: 'staff',
        rule,
        params: ClientIdParams,
        success: { status: 204, description: 'Deleted' },
        errors: { 403: BUILT_IN, 404: NOT_FOUND },
        handler: async (ctx, { params }) => {
          await clientService.remove(params.clientId, by(ctx));
        },
      }),
      operation({
        operationId: 'rotateClientSecret',
        method: 'post',
        path: '/api/clients/{clientId}/rotate-secret/',
        summary: 'Replace the secret (staff); the old one stops working at once',
        tags: TAGS,
        group: 'staff',
        rule,
        params: ClientIdParams,
        success: { status: 200, description: 'The client with its new secret', schema: ClientSchema },
        errors: { 400: 'The client has no secret (public, or private_key_jwt).', 403: BUILT_IN, 404: NOT_FOUND },
        handler: async (ctx, { params }) => {
          const { client, clientSecret } = await clientService.rotateSecret(params.clientId, by(ctx));
          ctx.set('Cache-Control', 'no-store');
          return withSecret(clientJson(client), clientSecret);
        },
      }),
    ],
    { resolveBearer, staffRefusal: 'Only staff may manage clients.' },
  );
}
