import type { Context } from 'koa';
import type { AuditActor } from '../../core/audit/audit-log.js';
import { groupJson, type GroupService } from '../../core/groups/group-service.js';
import { ApiError } from '../../errors.js';
import { type BearerResolver } from './bearer-auth.js';
import {
  GroupCreateSchema,
  GroupIdParams,
  groupInputOf,
  GroupMemberAddSchema,
  GroupMemberPageSchema,
  GroupMemberParams,
  GroupMemberSchema,
  GroupPageSchema,
  GroupSchema,
  GroupWriteSchema,
} from './groups-schemas.js';
import { apiRouter, operation, type ApiRouter } from './operation.js';
import { pageLinks } from './pagination.js';
import { requireUser } from './route-guard.js';
import { PageQuery } from './schemas.js';

/** The staff member acting, for the audit log. */
function by(ctx: Context): AuditActor {
  const user = requireUser(ctx);
  return { label: user.username, userId: user.id, ip: ctx.ip };
}

const TAGS = ['groups'];
const rule = { scope: 'admin' } as const;
const NOT_FOUND = 'No such group.';
const TAKEN = 'Another group has that name.';
const PAST_THE_END = 'Page past the end.';

/**
 * /api/groups/: staff manage groups (as Django's auth_group: a name and permissions) and
 * their members. The `groups` claim of tokens issued after a change shows it; access tokens
 * already issued keep the names they were issued with until they expire.
 */
export function createGroupsRouter({ groupService, resolveBearer, publicUrl }: { groupService: GroupService; resolveBearer: BearerResolver; publicUrl: string }): ApiRouter {
  return apiRouter(
    [
      operation({
        operationId: 'listGroups',
        method: 'get',
        path: '/api/groups/',
        summary: 'List groups by name (staff)',
        tags: TAGS,
        group: 'staff',
        rule,
        query: PageQuery,
        success: { status: 200, description: 'A page of groups', schema: GroupPageSchema },
        errors: { 404: PAST_THE_END },
        handler: async (ctx, { query: { page, page_size: pageSize } }) => {
          const { count, groups } = await groupService.list({ offset: (page - 1) * pageSize, limit: pageSize });
          if (page > 1 && groups.length === 0) throw new ApiError(404, 'not_found', 'Invalid page.');
          return { count, ...pageLinks(ctx, `${publicUrl}/api/groups/`, page, pageSize, count), results: groups.map(groupJson) };
        },
      }),
      operation({
        operationId: 'createGroup',
        method: 'post',
        path: '/api/groups/',
        summary: 'Create a group (staff)',
        tags: TAGS,
        group: 'staff',
        rule,
        body: GroupCreateSchema,
        success: { status: 201, description: 'Created', schema: GroupSchema },
        errors: { 409: TAKEN },
        handler: async (ctx, { body }) => {
          const group = await groupService.create(groupInputOf(body), by(ctx));
          ctx.set('Location', `/api/groups/${group.id}/`);
          return groupJson(group);
        },
      }),
      operation({
        operationId: 'getGroup',
        method: 'get',
        path: '/api/groups/{id}/',
        summary: 'Read a group (staff)',
        tags: TAGS,
        group: 'staff',
        rule,
        params: GroupIdParams,
        success: { status: 200, description: 'The group', schema: GroupSchema },
        errors: { 404: NOT_FOUND },
        handler: async (_ctx, { params }) => groupJson(await groupService.get(params.id)),
      }),
      operation({
        operationId: 'updateGroup',
        method: 'patch',
        path: '/api/groups/{id}/',
        summary: 'Rename a group or replace its permissions (staff)',
        description: 'Tokens issued afterwards carry the new name; access tokens already issued keep the names they were issued with until they expire.',
        tags: TAGS,
        group: 'staff',
        rule,
        params: GroupIdParams,
        body: GroupWriteSchema,
        before: (_ctx, { params }) => groupService.get(params.id),
        success: { status: 200, description: 'Updated', schema: GroupSchema },
        errors: { 404: NOT_FOUND, 409: TAKEN },
        handler: async (ctx, { params, body }) => groupJson(await groupService.update(params.id, groupInputOf(body), by(ctx))),
      }),
      operation({
        operationId: 'deleteGroup',
        method: 'delete',
        path: '/api/groups/{id}/',
        summary: 'Delete a group and its memberships (staff)',
        tags: TAGS,
        group: 'staff',
        rule,
        params: GroupIdParams,
        success: { status: 204, description: 'Deleted' },
        errors: { 404: NOT_FOUND },
        handler: async (ctx, { params }) => {
          await groupService.remove(params.id, by(ctx));
        },
      }),
      operation({
        operationId: 'listGroupMembers',
        method: 'get',
        path: '/api/groups/{id}/members/',
        summary: "A group's members by username (staff)",
        tags: TAGS,
        group: 'staff',
        rule,
        params: GroupIdParams,
        query: PageQuery,
        success: { status: 200, description: 'A page of members', schema: GroupMemberPageSchema },
        errors: { 404: `${NOT_FOUND} Or ${PAST_THE_END.toLowerCase()}` },
        handler: async (ctx, { params, query: { page, page_size: pageSize } }) => {
          const members = await groupService.members(params.id);
          const results = members.slice((page - 1) * pageSize, page * pageSize);
          if (page > 1 && results.length === 0) throw new ApiError(404, 'not_found', 'Invalid page.');
          return { count: members.length, ...pageLinks(ctx, `${publicUrl}/api/groups/${params.id}/members/`, page, pageSize, members.length), results };
        },
      }),
      operation({
        operationId: 'addGroupMember',
        method: 'post',
        path: '/api/groups/{id}/members/',
        summary: 'Add a user to a group (staff); adding a member again changes nothing',
        tags: TAGS,
        group: 'staff',
        rule,
        params: GroupIdParams,
        body: GroupMemberAddSchema,
        before: (_ctx, { params }) => groupService.get(params.id),
        success: { status: 201, description: 'A member', schema: GroupMemberSchema },
        errors: { 404: 'No such group, or no such user.' },
        handler: async (ctx, { params, body }) => groupService.addMember(params.id, body.user_id, by(ctx)),
      }),
      operation({
        operationId: 'removeGroupMember',
        method: 'delete',
        path: '/api/groups/{id}/members/{user_id}/',
        summary: 'Remove a user from a group (staff)',
        tags: TAGS,
        group: 'staff',
        rule,
        params: GroupMemberParams,
        success: { status: 204, description: 'Removed' },
        errors: { 404: 'No such group or user, or the user is not a member.' },
        handler: async (ctx, { params }) => {
          await groupService.removeMember(params.id, params.user_id, by(ctx));
        },
      }),
    ],
    { resolveBearer, staffRefusal: 'Only staff may manage groups.' },
  );
}
