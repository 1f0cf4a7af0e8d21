import type { Context } from 'koa';
import { z } from 'zod';
import { userJson, userJsonForScopes, type UserService } from '../../core/accounts/user-service.js';
import { ApiError } from '../../errors.js';
import { DRF_NOT_FOUND } from '../http/error-mapping.js';
import type { User, UserRepository } from '../../storage/users.js';
import { type BearerResolver } from './bearer-auth.js';
import { apiRouter, operation, type ApiRouter } from './operation.js';
import { pageLinks } from './pagination.js';
import { callerOf, principalOf, requireUser } from './route-guard.js';
import { ScopedUserSchema, UserDeleteSchema, UserIdParams, UserListQuery, UserPageSchema, UserSchema, UserWriteSchema } from './users-schemas.js';

export interface UsersRoutesDeps {
  users: UserRepository;
  userService: UserService;
  /** The user's groups (id and name), shown to staff on GET /api/users/<id>/. */
  groupsOf: (userId: number) => Promise<Array<{ id: number; name: string }>>;
  resolveBearer: BearerResolver;
  allowRegistration: boolean;
  publicUrl: string;
}

const TAGS = ['users'];
const NOT_FOUND = 'No such user (or not yours).';
const TAKEN = 'Username or email taken.';

/**
 * /api/users/ (Django REST framework style) and /auth/me/. Paths are served with and without
 * the trailing slash. Non-staff callers see other users as absent (404), so ids cannot be probed.
 */
export function createUsersRouter({ users, userService, groupsOf, resolveBearer, allowRegistration, publicUrl }: UsersRoutesDeps): ApiRouter {
  async function target(ctx: Context, id: string): Promise<{ actor: User; user: User }> {
    const actor = requireUser(ctx);
    const user = await users.findById(id);
    if (!user || (!actor.isStaff && actor.id !== user.id)) throw new ApiError(404, 'not_found', 'No such user.', undefined, DRF_NOT_FOUND);
    return { actor, user };
  }

  /** The caller's user, at the path given. */
  const currentUser = (operationId: string, path: '/auth/me/' | '/api/auth/me/') =>
    operation({
      operationId,
      method: 'get',
      path,
      summary: "The caller's user",
      description: 'Read-only, like /o/me: a userinfo token sees the fields its OpenID scopes allow.',
      tags: TAGS,
      group: 'user',
      rule: { scope: 'users:read', userinfo: true },
      success: { status: 200, description: 'The user', schema: z.union([UserSchema, ScopedUserSchema]) },
      handler: (ctx) => {
        const user = requireUser(ctx);
        const access = principalOf(ctx)?.access;
        return access?.kind === 'userinfo' ? userJsonForScopes(user, access.scopes) : userJson(user);
      },
    });

  const replaceOrUpdate = (method: 'put' | 'patch') =>
    operation({
      operationId: method === 'put' ? 'replaceUser' : 'updateUser',
      method,
      path: '/api/users/{id}/',
      summary: method === 'put' ? 'Replace the editable fields (staff or self)' : 'Update some fields (staff or self)',
      description:
        method === 'put'
          ? 'Absent names and email are reset. Changing your own email or password takes `current_password` (and `otp`).'
          : 'Only the fields sent change. Changing your own email or password takes `current_password` (and `otp`).',
      tags: TAGS,
      group: 'user',
      rule: { scope: 'users:write' },
      params: UserIdParams,
      body: UserWriteSchema,
      form: true,
      success: { status: 200, description: 'Updated', schema: UserSchema },
      errors: { 403: 'A field only staff (or superusers) may write, or another superuser.', 404: NOT_FOUND, 409: `${TAKEN} Or the last active superuser would go.`, 429: 'Too many wrong current passwords (Retry-After).' },
      handler: async (ctx, { params, body }) => {
        const { actor, user } = await target(ctx, params.id);
        return userJson(await userService.update({ user: actor, ip: ctx.ip }, user, body, { replace: method === 'put' }));
      },
    });

  return apiRouter(
    [
      operation({
        operationId: 'createUser',
        method: 'post',
        path: '/api/users/',
        summary: 'Register (anonymous, when registration is open) or create a user (staff)',
        tags: TAGS,
        group: 'public',
        rule: { scope: 'users:write', optional: true },
        body: UserWriteSchema,
        form: true,
        success: { status: 201, description: 'Created', schema: UserSchema },
        errors: { 403: 'Registration is closed, or a field only staff may write.', 409: TAKEN },
        // A closed registration says so before anything about the body.
        before: async (ctx) => {
          if (!callerOf(ctx)?.isStaff && !allowRegistration) throw new ApiError(403, 'permission_denied', 'Registration is closed.');
        },
        handler: async (ctx, { body }) => {
          const actor = callerOf(ctx);
          const user = await userService.create({ user: actor, ip: ctx.ip }, body, { requireEmail: true });
          ctx.set('Location', `/api/users/${user.id}/`);
          return userJson(user);
        },
      }),
      operation({
        operationId: 'listUsers',
        method: 'get',
        path: '/api/users/',
        summary: 'List users (staff)',
        tags: TAGS,
        group: 'staff',
        rule: { scope: 'users:read' },
        query: UserListQuery,
        success: { status: 200, description: 'A page of users', schema: UserPageSchema },
        errors: { 404: 'Page past the end.' },
        handler: async (ctx, { query }) => {
          const { page, page_size: pageSize, search, ordering } = query;
          const { count, users: found } = await users.list({ offset: (page - 1) * pageSize, limit: pageSize, ordering, ...(search ? { search } : {}) });
          if (page > 1 && found.length === 0) throw new ApiError(404, 'not_found', 'Invalid page.');
          return { count, ...pageLinks(ctx, `${publicUrl}/api/users/`, page, pageSize, count), results: found.map(userJson) };
        },
      }),
      operation({
        operationId: 'getUser',
        method: 'get',
        path: '/api/users/{id}/',
        summary: 'Read a user (staff or self); staff also see their groups',
        tags: TAGS,
        group: 'user',
        rule: { scope: 'users:read' },
        params: UserIdParams,
        success: { status: 200, description: 'The user', schema: UserSchema },
        errors: { 404: NOT_FOUND },
        handler: async (ctx, { params }) => {
          const { actor, user } = await target(ctx, params.id);
          // Only staff: the body a person reads about themselves stays DRF's.
          return actor.isStaff ? { ...userJson(user), groups: await groupsOf(user.id) } : userJson(user);
        },
      }),
      replaceOrUpdate('put'),
      replaceOrUpdate('patch'),
      operation({
        operationId: 'deleteUser',
        method: 'delete',
        path: '/api/users/{id}/',
        summary: 'Delete a user and revoke all their sessions and tokens (staff or self)',
        description: 'Deleting your own account takes `current_password` (and `otp`) in the body (JSON or form).',
        tags: TAGS,
        group: 'user',
        rule: { scope: 'users:write' },
        params: UserIdParams,
        body: UserDeleteSchema,
        form: true,
        success: { status: 204, description: 'Deleted' },
        errors: { 403: 'Another superuser.', 404: NOT_FOUND, 409: 'The last active superuser.', 429: 'Too many wrong current passwords (Retry-After).' },
        handler: async (ctx, { params, body }) => {
          const { actor, user } = await target(ctx, params.id);
          await userService.remove({ user: actor, ip: ctx.ip }, user, { proof: { password: body.current_password, otp: body.otp } });
        },
      }),
      currentUser('getCurrentUser', '/auth/me/'),
      // PyAuthService's own URL for it (its router mounted /auth/ under /api/ too).
      currentUser('getCurrentUserUnderApi', '/api/auth/me/'),
    ],
    { resolveBearer },
  );
}
