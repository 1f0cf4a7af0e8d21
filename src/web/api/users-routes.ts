import Router from '@koa/router';
import type { Context } from 'koa';
import { userJson, userJsonForScopes, type UserService } from '../../core/accounts/user-service.js';
import { ApiError } from '../../errors.js';
import { USER_ORDERING_FIELDS, type User, type UserOrderingField, type UserRepository } from '../../storage/users.js';
import { type BearerResolver } from './bearer-auth.js';
import { callerOf, guard, principalOf, requireUser } from './route-guard.js';
import { bodyOf, parseBody, parseDeleteBody } from './body.js';
import { pageLinks, pageOf } from './pagination.js';



export interface UsersRoutesDeps {
  users: UserRepository;
  userService: UserService;
  resolveBearer: BearerResolver;
  allowRegistration: boolean;
  publicUrl: string;
}

function parseOrdering(value: unknown): Array<{ field: UserOrderingField; descending: boolean }> {
  if (value === undefined || value === '') return [];
  if (typeof value !== 'string') throw new ApiError(400, 'invalid_request', 'ordering must be given once.');
  return value.split(',').map((part) => {
    const descending = part.startsWith('-');
    const field = (descending ? part.slice(1) : part).trim();
    if (!(USER_ORDERING_FIELDS as readonly string[]).includes(field)) {
      throw new ApiError(400, 'invalid_request', `Cannot order by "${field}"; use ${USER_ORDERING_FIELDS.join(', ')} (prefix - for descending).`);
    }
    return { field: field as UserOrderingField, descending };
  });
}

function requireStaff(ctx: Context): User {
  const user = requireUser(ctx);
  if (!user.isStaff) throw new ApiError(403, 'permission_denied', 'Only staff may do this.');
  return user;
}

/**
 * /api/users/ (Django REST framework style) and /auth/me/. Paths are declared without the
 * trailing slash, which the router then treats as optional, so both spellings work.
 * Non-staff callers see other users as absent (404), so ids cannot be probed.
 */
export function createUsersRouter({ users, userService, resolveBearer, allowRegistration, publicUrl }: UsersRoutesDeps): Router {
  const router = new Router();
  const read = guard(resolveBearer, { scope: 'users:read' });
  const write = guard(resolveBearer, { scope: 'users:write' });

  async function target(ctx: Context): Promise<{ actor: User; user: User }> {
    const actor = requireUser(ctx);
    const user = await users.findById(String(ctx.params['id']));
    if (!user || (!actor.isStaff && actor.id !== user.id)) throw new ApiError(404, 'not_found', 'No such user.');
    return { actor, user };
  }

  router.post('/api/users', guard(resolveBearer, { scope: 'users:write', optional: true }), parseBody, async (ctx) => {
    const actor = callerOf(ctx);
    if (!actor?.isStaff && !allowRegistration) throw new ApiError(403, 'permission_denied', 'Registration is closed.');
    const user = await userService.create({ user: actor, ip: ctx.ip }, bodyOf(ctx), { requireEmail: true });
    ctx.status = 201;
    ctx.set('Location', `/api/users/${user.id}/`);
    ctx.body = userJson(user);
  });

  router.get('/api/users', read, async (ctx) => {
    requireStaff(ctx);
    const { page, pageSize } = pageOf(ctx);
    const search = typeof ctx.query['search'] === 'string' ? ctx.query['search'] : undefined;
    const ordering = parseOrdering(ctx.query['ordering']);
    const { count, users: found } = await users.list({
      offset: (page - 1) * pageSize,
      limit: pageSize,
      ordering,
      ...(search ? { search } : {}),
    });
    if (page > 1 && found.length === 0) throw new ApiError(404, 'not_found', 'Invalid page.');
    ctx.body = {
      count,
      ...pageLinks(ctx, `${publicUrl}/api/users/`, page, pageSize, count),
      results: found.map(userJson),
    };
  });

  router.get('/api/users/:id', read, async (ctx) => {
    ctx.body = userJson((await target(ctx)).user);
  });

  for (const method of ['put', 'patch'] as const) {
    router[method]('/api/users/:id', write, parseBody, async (ctx) => {
      const { actor, user } = await target(ctx);
      ctx.body = userJson(await userService.update({ user: actor, ip: ctx.ip }, user, bodyOf(ctx), { replace: method === 'put' }));
    });
  }

  // Deleting your own account takes `current_password` (and `otp`) in the body.
  router.delete('/api/users/:id', write, parseDeleteBody, async (ctx) => {
    const { actor, user } = await target(ctx);
    const body = bodyOf(ctx);
    await userService.remove({ user: actor, ip: ctx.ip }, user, { proof: { password: body['current_password'], otp: body['otp'] } });
    ctx.status = 204;
  });

  // Read-only, like /o/me: a userinfo token sees the fields its OpenID scopes allow.
  router.get('/auth/me', guard(resolveBearer, { scope: 'users:read', userinfo: true }), async (ctx) => {
    const user = requireUser(ctx);
    const access = principalOf(ctx)?.access;
    ctx.body = access?.kind === 'userinfo' ? userJsonForScopes(user, access.scopes) : userJson(user);
  });

  return router;
}
