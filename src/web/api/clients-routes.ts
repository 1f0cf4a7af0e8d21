import Router from '@koa/router';
import type { Context } from 'koa';
import type { AuditActor } from '../../core/audit/audit-log.js';
import { clientJson, type ClientService } from '../../core/clients/client-service.js';
import { ApiError, requestFields } from '../../errors.js';
import { TOKEN_ENDPOINT_AUTH_METHODS, type JwkSet, type NewClient, type TokenEndpointAuthMethod } from '../../storage/clients.js';
import { type BearerResolver } from './bearer-auth.js';
import { guard, requireUser } from './route-guard.js';
import { bodyOf, parseBody } from './body.js';
import { pageLinks, pageOf } from './pagination.js';

const KEY_FIELDS = ['token_endpoint_auth_method', 'jwks', 'jwks_uri', 'require_pushed_authorization_requests', 'require_signed_request_object'] as const;
const LIST_FIELDS = [
  ['redirect_uris', 'redirectUris'],
  ['post_logout_redirect_uris', 'postLogoutRedirectUris'],
  ['grant_types', 'grantTypes'],
  ['api_scopes', 'apiScopes'],
] as const;
const FIELDS = ['client_name', ...LIST_FIELDS.map(([key]) => key), 'client_type', 'scope', 'backchannel_logout_uri', 'dpop_bound_access_tokens', ...KEY_FIELDS] as const;

/** Client authentication, keys (null removes them), PAR and request-object requirements. */
function keyInput(body: Record<string, unknown>, problem: (key: string, message: string) => void): Partial<NewClient> {
  const out: Partial<NewClient> = {};
  const method = body['token_endpoint_auth_method'];
  if (method !== undefined) {
    if (!(TOKEN_ENDPOINT_AUTH_METHODS as readonly unknown[]).includes(method)) problem('token_endpoint_auth_method', `Must be one of ${TOKEN_ENDPOINT_AUTH_METHODS.join(', ')}.`);
    else out.tokenEndpointAuthMethod = method as TokenEndpointAuthMethod;
  }
  const jwks = body['jwks'];
  if (jwks !== undefined) {
    if (jwks !== null && (typeof jwks !== 'object' || Array.isArray(jwks))) problem('jwks', 'Must be a JWK Set object or null.');
    else out.jwks = jwks as JwkSet | null;
  }
  const jwksUri = body['jwks_uri'];
  if (jwksUri !== undefined) {
    if (jwksUri !== null && typeof jwksUri !== 'string') problem('jwks_uri', 'Must be a URL or null.');
    else out.jwksUri = jwksUri;
  }
  for (const [key, field] of [['require_pushed_authorization_requests', 'requirePushedAuthorizationRequests'], ['require_signed_request_object', 'requireSignedRequestObject']] as const) {
    if (body[key] === undefined) continue;
    if (typeof body[key] !== 'boolean') problem(key, 'Must be true or false.');
    else out[field] = body[key];
  }
  return out;
}

/** Reads the writable client fields, one message per bad field. */
function clientInput(body: Record<string, unknown>, { create }: { create: boolean }): Partial<NewClient> {
  const fields: Record<string, string[]> = {};
  const problem = (key: string, message: string) => (fields[key] ??= []).push(message);
  for (const key of Object.keys(body)) {
    if (!(FIELDS as readonly string[]).includes(key)) problem(key, 'This field is read-only or unknown.');
  }
  const strings = (key: string): string[] | undefined => {
    const value = body[key];
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
      problem(key, 'Must be a list of strings.');
      return undefined;
    }
    return value as string[];
  };
  const out: Partial<NewClient> = {};
  if (body['client_name'] !== undefined) {
    if (typeof body['client_name'] !== 'string' || !body['client_name'].trim()) problem('client_name', 'Must be a non-empty string.');
    else out.name = body['client_name'];
  } else if (create) {
    problem('client_name', 'This field is required.');
  }
  for (const [key, field] of LIST_FIELDS) {
    const list = strings(key);
    if (list) out[field] = list;
  }
  if (body['client_type'] !== undefined) {
    if (body['client_type'] !== 'public' && body['client_type'] !== 'confidential') problem('client_type', 'Must be "public" or "confidential".');
    else out.isPublic = body['client_type'] === 'public';
  }
  if (body['scope'] !== undefined) {
    if (typeof body['scope'] !== 'string') problem('scope', 'Must be a space-separated string.');
    else out.scope = body['scope'];
  }
  if (body['backchannel_logout_uri'] !== undefined) {
    if (typeof body['backchannel_logout_uri'] !== 'string') problem('backchannel_logout_uri', 'Must be a URL.');
    else out.backchannelLogoutUri = body['backchannel_logout_uri'];
  }
  if (body['dpop_bound_access_tokens'] !== undefined) {
    if (typeof body['dpop_bound_access_tokens'] !== 'boolean') problem('dpop_bound_access_tokens', 'Must be true or false.');
    else out.dpopBoundAccessTokens = body['dpop_bound_access_tokens'];
  }
  Object.assign(out, keyInput(body, problem));
  if (Object.keys(fields).length) throw requestFields(fields);
  return out;
}

/** The staff member acting, for the audit log. */
function by(ctx: Context): AuditActor {
  const user = requireUser(ctx);
  return { label: user.username, userId: user.id, ip: ctx.ip };
}

function requireStaff(ctx: Context): void {
  if (!requireUser(ctx).isStaff) throw new ApiError(403, 'permission_denied', 'Only staff may manage clients.');
}

/**
 * /api/clients/: staff manage OAuth clients over REST. Secrets appear in a response only
 * when one is created (registration, rotation, switch to confidential).
 */
export function createClientsRouter({ clientService, resolveBearer, publicUrl }: { clientService: ClientService; resolveBearer: BearerResolver; publicUrl: string }): Router {
  const router = new Router();
  const staff = [guard(resolveBearer, { scope: 'admin' }), async (ctx: Context, next: () => Promise<unknown>) => {
    requireStaff(ctx);
    await next();
  }];
  const withSecret = (json: ReturnType<typeof clientJson>, secret: string | null) => (secret ? { ...json, client_secret: secret } : json);

  router.get('/api/clients', ...staff, async (ctx) => {
    const { page, pageSize } = pageOf(ctx);
    const all = await clientService.list();
    const results = all.slice((page - 1) * pageSize, page * pageSize);
    if (page > 1 && results.length === 0) throw new ApiError(404, 'not_found', 'Invalid page.');
    ctx.body = { count: all.length, ...pageLinks(ctx, `${publicUrl}/api/clients/`, page, pageSize, all.length), results: results.map(clientJson) };
  });

  router.post('/api/clients', ...staff, parseBody, async (ctx) => {
    const input = clientInput(bodyOf(ctx), { create: true });
    const { client, clientSecret } = await clientService.register({ ...input, name: input.name ?? '' }, by(ctx));
    ctx.status = 201;
    ctx.set('Location', `/api/clients/${client.clientId}/`);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = withSecret(clientJson(client), clientSecret);
  });

  router.get('/api/clients/:clientId', ...staff, async (ctx) => {
    ctx.body = clientJson(await clientService.get(String(ctx.params['clientId'])));
  });

  router.patch('/api/clients/:clientId', ...staff, parseBody, async (ctx) => {
    const { client, clientSecret } = await clientService.update(String(ctx.params['clientId']), clientInput(bodyOf(ctx), { create: false }), by(ctx));
    ctx.set('Cache-Control', 'no-store');
    ctx.body = withSecret(clientJson(client), clientSecret);
  });

  router.delete('/api/clients/:clientId', ...staff, async (ctx) => {
    await clientService.remove(String(ctx.params['clientId']), by(ctx));
    ctx.status = 204;
  });

  router.post('/api/clients/:clientId/rotate-secret', ...staff, async (ctx) => {
    const { client, clientSecret } = await clientService.rotateSecret(String(ctx.params['clientId']), by(ctx));
    ctx.set('Cache-Control', 'no-store');
    ctx.body = withSecret(clientJson(client), clientSecret);
  });

  return router;
}
