import Router from '@koa/router';
import type { Context } from 'koa';
import type { AuditActor } from '../../core/audit/audit-log.js';
import { ApiError, requestFields } from '../../errors.js';
import { RESOURCE_FIELDS, type ResourceInput } from '../../core/resources/resource-input.js';
import { resourceJson, type ResourceService } from '../../core/resources/resource-service.js';
import { type BearerResolver } from './bearer-auth.js';
import { guard, requireUser } from './route-guard.js';
import { bodyOf, parseBody } from './body.js';
import { pageLinks, pageOf } from './pagination.js';

/** Reads the writable fields with their JSON types; the service checks the values. */
function resourceInput(body: Record<string, unknown>, { create }: { create: boolean }): ResourceInput {
  const fields: Record<string, string[]> = {};
  const problem = (key: string, message: string) => (fields[key] ??= []).push(message);
  for (const key of Object.keys(body)) {
    if (!(RESOURCE_FIELDS as readonly string[]).includes(key)) problem(key, 'This field is read-only or unknown.');
  }
  const out: ResourceInput = {};
  const identifier = body['identifier'];
  if (identifier === undefined) {
    if (create) problem('identifier', 'This field is required.');
  } else if (typeof identifier !== 'string') problem('identifier', 'Must be a string (an absolute URI).');
  else out.identifier = identifier;
  const name = body['name'];
  if (name !== undefined) {
    if (typeof name !== 'string') problem('name', 'Must be a string.');
    else out.name = name;
  }
  const scopes = body['scopes'];
  if (scopes !== undefined) {
    if (!Array.isArray(scopes) || scopes.some((s) => typeof s !== 'string')) problem('scopes', 'Must be a list of strings.');
    else out.scopes = scopes as string[];
  }
  const ttl = body['access_token_ttl'];
  if (ttl !== undefined) {
    if (typeof ttl !== 'number' || !Number.isInteger(ttl)) problem('access_token_ttl', 'Must be a whole number of seconds.');
    else out.accessTokenTtl = ttl;
  }
  const format = body['access_token_format'];
  if (format !== undefined) {
    if (typeof format !== 'string') problem('access_token_format', 'Must be "jwt" or "opaque".');
    else out.accessTokenFormat = format;
  }
  if (Object.keys(fields).length) throw requestFields(fields);
  return out;
}

/** The staff member acting, for the audit log. */
function by(ctx: Context): AuditActor {
  const user = requireUser(ctx);
  return { label: user.username, userId: user.id, ip: ctx.ip };
}

/**
 * /api/resources/: staff manage the API resources (RFC 8707) tokens are issued for. The
 * built-in REST API resource (id 0) is listed and readable, never changed or deleted (403).
 */
export function createResourcesRouter({ resourceService, resolveBearer, publicUrl }: { resourceService: ResourceService; resolveBearer: BearerResolver; publicUrl: string }): Router {
  const router = new Router();
  const staff = [
    guard(resolveBearer, { scope: 'admin' }),
    async (ctx: Context, next: () => Promise<unknown>) => {
      if (!requireUser(ctx).isStaff) throw new ApiError(403, 'permission_denied', 'Only staff may manage API resources.');
      await next();
    },
  ];

  router.get('/api/resources', ...staff, async (ctx) => {
    const { page, pageSize } = pageOf(ctx);
    const all = await resourceService.list();
    const results = all.slice((page - 1) * pageSize, page * pageSize);
    if (page > 1 && results.length === 0) throw new ApiError(404, 'not_found', 'Invalid page.');
    ctx.body = { count: all.length, ...pageLinks(ctx, `${publicUrl}/api/resources/`, page, pageSize, all.length), results: results.map(resourceJson) };
  });

  router.post('/api/resources', ...staff, parseBody, async (ctx) => {
    const resource = await resourceService.create(resourceInput(bodyOf(ctx), { create: true }), by(ctx));
    ctx.status = 201;
    ctx.set('Location', `/api/resources/${resource.id}/`);
    ctx.body = resourceJson(resource);
  });

  router.get('/api/resources/:id', ...staff, async (ctx) => {
    ctx.body = resourceJson(await resourceService.get(String(ctx.params['id'])));
  });

  router.patch('/api/resources/:id', ...staff, parseBody, async (ctx) => {
    const id = String(ctx.params['id']);
    // 404, and the built-in's 403, come before complaints about the body.
    await resourceService.getEditable(id);
    ctx.body = resourceJson(await resourceService.update(id, resourceInput(bodyOf(ctx), { create: false }), by(ctx)));
  });

  router.delete('/api/resources/:id', ...staff, async (ctx) => {
    await resourceService.remove(String(ctx.params['id']), by(ctx));
    ctx.status = 204;
  });

  return router;
}
