import type { Context } from 'koa';
import { RESOURCE_TTL } from '../../core/tokens/lifetimes.js';
import type { Resource } from '../../core/resources/built-in.js';
import type { ResourceInput } from '../../core/resources/resource-input.js';
import { resourceJson } from '../../core/resources/resource-service.js';
import { auditActorOf } from './admin-auth.js';
import { csrfOk, FORM_EXPIRED, formOf, problem, problemOf, text, type AdminKit, type Problem } from './kit.js';

/** The fields of the resource form, as typed (so they come back as they were). */
interface ResourceFormValues {
  identifier: string;
  name: string;
  scopes: string;
  access_token_ttl: string;
  access_token_format: string;
}

function valuesOf(resource: Resource): ResourceFormValues {
  return {
    identifier: resource.identifier,
    name: resource.name,
    scopes: resource.scopes.join(' '),
    access_token_ttl: String(resource.accessTokenTtl),
    access_token_format: resource.accessTokenFormat,
  };
}

function typedValues(body: Record<string, unknown>): ResourceFormValues {
  return {
    identifier: text(body, 'identifier'),
    name: text(body, 'name'),
    scopes: text(body, 'scopes'),
    access_token_ttl: text(body, 'access_token_ttl'),
    access_token_format: text(body, 'access_token_format'),
  };
}

/** Turns the typed text into service input; the service checks the values themselves. */
function inputOf(v: ResourceFormValues): ResourceInput | Problem {
  const ttl = v.access_token_ttl.trim();
  if (!/^\d{1,9}$/.test(ttl)) {
    return problem(400, 'Please correct the fields marked below.', { access_token_ttl: ['Enter a whole number of seconds.'] });
  }
  return {
    identifier: v.identifier,
    name: v.name,
    scopes: v.scopes.split(/\s+/).filter(Boolean),
    accessTokenTtl: Number(ttl),
    accessTokenFormat: v.access_token_format,
  };
}

const isProblem = (x: ResourceInput | Problem): x is Problem => 'status' in x;

/** API resources (RFC 8707): list, add, edit, delete; the built-in REST API is shown read-only. */
export function addResourcePages({ deps, router, page, requireStaff, form }: AdminKit): void {
  const { resourceService } = deps;
  const limits = { min: RESOURCE_TTL.min, max: RESOURCE_TTL.max };

  async function loadResource(ctx: Context): Promise<Resource | undefined> {
    const resource = await resourceService.get(String(ctx.params['id'] ?? '')).catch(() => undefined);
    if (!resource) page(ctx, 'not-found', { title: 'No such API resource', back: '/admin/resources', what: 'API resource' }, 404);
    return resource;
  }

  router.get('/admin/resources', requireStaff, async (ctx) => {
    page(ctx, 'resources', { title: 'API resources', resources: (await resourceService.list()).map(resourceJson) });
  });

  // ----- add -----
  const renderNew = (ctx: Context, v: ResourceFormValues, failure?: Problem) =>
    page(
      ctx,
      'resource-form',
      { title: 'Add an API resource', mode: 'new', action: '/admin/resources/new', values: v, limits, message: failure?.message ?? null, errors: failure?.fields ?? {} },
      failure?.status ?? 200,
    );

  router.get('/admin/resources/new', requireStaff, (ctx) =>
    renderNew(ctx, { identifier: '', name: '', scopes: '', access_token_ttl: String(RESOURCE_TTL.default), access_token_format: 'jwt' }),
  );

  router.post('/admin/resources/new', requireStaff, form, async (ctx) => {
    const v = typedValues(formOf(ctx));
    if (!csrfOk(ctx)) return renderNew(ctx, v, problem(403, FORM_EXPIRED));
    const input = inputOf(v);
    if (isProblem(input)) return renderNew(ctx, v, input);
    try {
      const resource = await resourceService.create(input, auditActorOf(ctx));
      ctx.status = 303;
      ctx.redirect(`/admin/resources/${resource.id}?done=resource-created`);
    } catch (error) {
      renderNew(ctx, v, problemOf(error));
    }
  });

  // ----- edit -----
  const renderEdit = (ctx: Context, resource: Resource, v: ResourceFormValues, failure?: Problem) =>
    page(
      ctx,
      'resource-form',
      {
        title: `Edit ${resource.name}`,
        mode: 'edit',
        action: `/admin/resources/${resource.id}`,
        resource: resourceJson(resource),
        values: v,
        limits,
        message: failure?.message ?? null,
        errors: failure?.fields ?? {},
      },
      failure?.status ?? 200,
    );

  router.get('/admin/resources/:id', requireStaff, async (ctx) => {
    const resource = await loadResource(ctx);
    if (resource) renderEdit(ctx, resource, valuesOf(resource));
  });

  router.post('/admin/resources/:id', requireStaff, form, async (ctx) => {
    const resource = await loadResource(ctx);
    if (!resource) return;
    const v = typedValues(formOf(ctx));
    if (!csrfOk(ctx)) return renderEdit(ctx, resource, v, problem(403, FORM_EXPIRED));
    const input = inputOf(v);
    if (isProblem(input)) return renderEdit(ctx, resource, v, input);
    try {
      const updated = await resourceService.update(resource.id, input, auditActorOf(ctx));
      ctx.status = 303;
      ctx.redirect(`/admin/resources/${updated.id}?done=resource-saved`);
    } catch (error) {
      renderEdit(ctx, resource, v, problemOf(error));
    }
  });

  // ----- delete -----
  const renderDelete = (ctx: Context, resource: Resource, failure?: Problem) =>
    page(ctx, 'resource-delete', { title: `Delete ${resource.name}`, resource: resourceJson(resource), message: failure?.message ?? null }, failure?.status ?? 200);

  router.get('/admin/resources/:id/delete', requireStaff, async (ctx) => {
    const resource = await loadResource(ctx);
    if (resource) renderDelete(ctx, resource);
  });

  router.post('/admin/resources/:id/delete', requireStaff, form, async (ctx) => {
    const resource = await loadResource(ctx);
    if (!resource) return;
    if (!csrfOk(ctx)) return renderDelete(ctx, resource, problem(403, FORM_EXPIRED));
    try {
      await resourceService.remove(resource.id, auditActorOf(ctx));
      ctx.status = 303;
      ctx.redirect('/admin/resources?done=resource-deleted');
    } catch (error) {
      renderDelete(ctx, resource, problemOf(error));
    }
  });
}
