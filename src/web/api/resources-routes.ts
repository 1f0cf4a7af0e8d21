import type { Context } from 'koa';
import type { AuditActor } from '../../core/audit/audit-log.js';
import { ApiError } from '../../errors.js';
import { resourceJson, type ResourceService } from '../../core/resources/resource-service.js';
import { type BearerResolver } from './bearer-auth.js';
import { apiRouter, operation, type ApiRouter } from './operation.js';
import { pageLinks } from './pagination.js';
import { ResourceCreateSchema, ResourceIdParams, resourceInputOf, ResourcePageSchema, ResourceSchema, ResourceWriteSchema } from './resources-schemas.js';
import { requireUser } from './route-guard.js';
import { PageQuery } from './schemas.js';

/** The staff member acting, for the audit log. */
function by(ctx: Context): AuditActor {
  const user = requireUser(ctx);
  return { label: user.username, userId: user.id, ip: ctx.ip };
}

const TAGS = ['resources'];
const rule = { scope: 'admin' } as const;
const NOT_FOUND = 'No such resource.';
const BUILT_IN = 'The built-in resource cannot be changed or deleted.';
const TAKEN = 'Identifier taken.';

/**
 * /api/resources/: staff manage the API resources (RFC 8707) tokens are issued for. The
 * built-in REST API resource (id 0) is listed and readable, never changed or deleted (403).
 */
export function createResourcesRouter({ resourceService, resolveBearer, publicUrl }: { resourceService: ResourceService; resolveBearer: BearerResolver; publicUrl: string }): ApiRouter {
  return apiRouter(
    [
      operation({
        operationId: 'listResources',
        method: 'get',
        path: '/api/resources/',
        summary: 'List API resources (staff), the built-in one first',
        tags: TAGS,
        group: 'staff',
        rule,
        query: PageQuery,
        success: { status: 200, description: 'A page of resources', schema: ResourcePageSchema },
        errors: { 404: 'Page past the end.' },
        handler: async (ctx, { query: { page, page_size: pageSize } }) => {
          const all = await resourceService.list();
          const results = all.slice((page - 1) * pageSize, page * pageSize);
          if (page > 1 && results.length === 0) throw new ApiError(404, 'not_found', 'Invalid page.');
          return { count: all.length, ...pageLinks(ctx, `${publicUrl}/api/resources/`, page, pageSize, all.length), results: results.map(resourceJson) };
        },
      }),
      operation({
        operationId: 'createResource',
        method: 'post',
        path: '/api/resources/',
        summary: 'Add an API resource (staff)',
        tags: TAGS,
        group: 'staff',
        rule,
        body: ResourceCreateSchema,
        success: { status: 201, description: 'Created', schema: ResourceSchema },
        errors: { 409: TAKEN },
        handler: async (ctx, { body }) => {
          const resource = await resourceService.create(resourceInputOf(body), by(ctx));
          ctx.set('Location', `/api/resources/${resource.id}/`);
          return resourceJson(resource);
        },
      }),
      operation({
        operationId: 'getResource',
        method: 'get',
        path: '/api/resources/{id}/',
        summary: 'Read an API resource (staff)',
        tags: TAGS,
        group: 'staff',
        rule,
        params: ResourceIdParams,
        success: { status: 200, description: 'The resource', schema: ResourceSchema },
        errors: { 404: NOT_FOUND },
        handler: async (_ctx, { params }) => resourceJson(await resourceService.get(params.id)),
      }),
      operation({
        operationId: 'updateResource',
        method: 'patch',
        path: '/api/resources/{id}/',
        summary: 'Change an API resource (staff); tokens already issued keep what they carry until they expire',
        tags: TAGS,
        group: 'staff',
        rule,
        params: ResourceIdParams,
        body: ResourceWriteSchema,
        // 404, and the built-in's 403, come before complaints about the body.
        before: (_ctx, { params }) => resourceService.getEditable(params.id),
        success: { status: 200, description: 'Updated', schema: ResourceSchema },
        errors: { 403: BUILT_IN, 404: NOT_FOUND, 409: TAKEN },
        handler: async (ctx, { params, body }) => resourceJson(await resourceService.update(params.id, resourceInputOf(body), by(ctx))),
      }),
      operation({
        operationId: 'deleteResource',
        method: 'delete',
        path: '/api/resources/{id}/',
        summary: 'Delete an API resource (staff)',
        tags: TAGS,
        group: 'staff',
        rule,
        params: ResourceIdParams,
        success: { status: 204, description: 'Deleted' },
        errors: { 403: BUILT_IN, 404: NOT_FOUND },
        handler: async (ctx, { params }) => {
          await resourceService.remove(params.id, by(ctx));
        },
      }),
    ],
    { resolveBearer, staffRefusal: 'Only staff may manage API resources.' },
  );
}
