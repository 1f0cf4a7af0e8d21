import type { Context } from 'koa';
import { permissionsFromText } from '../../core/groups/group-input.js';
import { groupJson } from '../../core/groups/group-service.js';
import type { Group } from '../../storage/groups.js';
import { auditActorOf } from './admin-auth.js';
import { csrfOk, FORM_EXPIRED, formOf, problem, problemOf, text, values, type AdminKit, type Problem } from './kit.js';

/** The fields of the group form, as typed (so they come back as they were). */
interface GroupFormValues {
  name: string;
  permissions: string;
}

const valuesOf = (group: Group): GroupFormValues => ({ name: group.name, permissions: group.permissions.join('\n') });
const typedValues = (body: Record<string, unknown>): GroupFormValues => ({ name: text(body, 'name'), permissions: text(body, 'permissions') });
const inputOf = (v: GroupFormValues) => ({ name: v.name, permissions: permissionsFromText(v.permissions) });

/** Groups: list, add, edit (name, permissions, members), delete. */
export function addGroupPages({ deps, router, page, requireStaff, form }: AdminKit): void {
  const { groupService, users } = deps;

  async function loadGroup(ctx: Context): Promise<Group | undefined> {
    const group = await groupService.get(String(ctx.params['id'] ?? '')).catch(() => undefined);
    if (!group) page(ctx, 'not-found', { title: 'No such group', back: '/admin/groups', what: 'group' }, 404);
    return group;
  }

  router.get('/admin/groups', requireStaff, async (ctx) => {
    const groups = await groupService.all();
    page(ctx, 'groups', { title: 'Groups', groups: groups.map(groupJson) });
  });

  const renderNew = (ctx: Context, v: GroupFormValues, failure?: Problem) =>
    page(ctx, 'group-form', { title: 'Add a group', mode: 'new', action: '/admin/groups/new', values: v, members: [], message: failure?.message ?? null, errors: failure?.fields ?? {} }, failure?.status ?? 200);

  router.get('/admin/groups/new', requireStaff, (ctx) => renderNew(ctx, { name: '', permissions: '' }));

  router.post('/admin/groups/new', requireStaff, form, async (ctx) => {
    const v = typedValues(formOf(ctx));
    if (!csrfOk(ctx)) return renderNew(ctx, v, problem(403, FORM_EXPIRED));
    try {
      const group = await groupService.create(inputOf(v), auditActorOf(ctx));
      ctx.status = 303;
      ctx.redirect(`/admin/groups/${group.id}?done=group-created`);
    } catch (error) {
      renderNew(ctx, v, problemOf(error));
    }
  });

  const renderEdit = async (ctx: Context, group: Group, v: GroupFormValues, failure?: Problem, memberFailure?: Problem) =>
    page(
      ctx,
      'group-form',
      {
        title: `Edit ${group.name}`,
        mode: 'edit',
        action: `/admin/groups/${group.id}`,
        group: groupJson(group),
        values: v,
        members: await groupService.members(group.id),
        message: failure?.message ?? memberFailure?.message ?? null,
        errors: failure?.fields ?? {},
      },
      failure?.status ?? memberFailure?.status ?? 200,
    );

  router.get('/admin/groups/:id', requireStaff, async (ctx) => {
    const group = await loadGroup(ctx);
    if (group) await renderEdit(ctx, group, valuesOf(group));
  });

  router.post('/admin/groups/:id', requireStaff, form, async (ctx) => {
    const group = await loadGroup(ctx);
    if (!group) return;
    const v = typedValues(formOf(ctx));
    if (!csrfOk(ctx)) return renderEdit(ctx, group, v, problem(403, FORM_EXPIRED));
    try {
      await groupService.update(group.id, inputOf(v), auditActorOf(ctx));
      ctx.status = 303;
      ctx.redirect(`/admin/groups/${group.id}?done=group-saved`);
    } catch (error) {
      await renderEdit(ctx, group, v, problemOf(error));
    }
  });

  // ----- members: add by username, remove by id -----
  router.post('/admin/groups/:id/members', requireStaff, form, async (ctx) => {
    const group = await loadGroup(ctx);
    if (!group) return;
    const body = formOf(ctx);
    if (!csrfOk(ctx)) return renderEdit(ctx, group, valuesOf(group), undefined, problem(403, FORM_EXPIRED));
    try {
      const remove = text(body, 'remove');
      if (remove) {
        await groupService.removeMember(group.id, remove, auditActorOf(ctx));
      } else {
        const user = await users.findByLogin(text(body, 'username').trim());
        if (!user) return renderEdit(ctx, group, valuesOf(group), undefined, problem(404, 'No such user.'));
        await groupService.addMember(group.id, user.id, auditActorOf(ctx));
      }
      ctx.status = 303;
      ctx.redirect(`/admin/groups/${group.id}?done=group-members-saved`);
    } catch (error) {
      await renderEdit(ctx, group, valuesOf(group), undefined, problemOf(error));
    }
  });

  // ----- a user's groups: the tick boxes of the user's page -----
  router.post('/admin/users/:id/groups', requireStaff, form, async (ctx) => {
    const target = await users.findById(String(ctx.params['id'] ?? ''));
    if (!target) return page(ctx, 'not-found', { title: 'No such user', back: '/admin/users', what: 'user' }, 404);
    if (!csrfOk(ctx)) return page(ctx, 'problem', { title: 'Not saved', message: FORM_EXPIRED, back: `/admin/users/${target.id}` }, 403);
    try {
      await groupService.setGroupsOf(target.id, values(formOf(ctx), 'group'), auditActorOf(ctx));
      ctx.status = 303;
      ctx.redirect(`/admin/users/${target.id}?done=user-groups-saved`);
    } catch (error) {
      const failure = problemOf(error);
      page(ctx, 'problem', { title: 'Not saved', message: failure.message, back: `/admin/users/${target.id}` }, failure.status);
    }
  });

  // ----- delete -----
  const renderDelete = (ctx: Context, group: Group, failure?: Problem) =>
    page(ctx, 'group-delete', { title: `Delete ${group.name}`, group: groupJson(group), message: failure?.message ?? null }, failure?.status ?? 200);

  router.get('/admin/groups/:id/delete', requireStaff, async (ctx) => {
    const group = await loadGroup(ctx);
    if (group) renderDelete(ctx, group);
  });

  router.post('/admin/groups/:id/delete', requireStaff, form, async (ctx) => {
    const group = await loadGroup(ctx);
    if (!group) return;
    if (!csrfOk(ctx)) return renderDelete(ctx, group, problem(403, FORM_EXPIRED));
    try {
      await groupService.remove(group.id, auditActorOf(ctx));
      ctx.status = 303;
      ctx.redirect('/admin/groups?done=group-deleted');
    } catch (error) {
      renderDelete(ctx, group, problemOf(error));
    }
  });
}
