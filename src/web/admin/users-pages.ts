import type { Context } from 'koa';
import { normalizeEmail, type User } from '../../storage/users.js';
import { PAGE_CLIENT_IDS } from '../../oidc/first-party-pages.js';
import { adminOf } from './admin-auth.js';
import { csrfOk, FORM_EXPIRED, formOf, problem, problemOf, text, ticked, type AdminKit, type Problem } from './kit.js';

const PAGE_SIZE = 25;

/** The fields a user form shows; passwords are never part of it, so never echoed back. */
interface UserFormValues {
  username: string;
  email: string;
  first_name: string;
  last_name: string;
  is_active: boolean;
  is_staff: boolean;
  is_superuser: boolean;
}

function valuesOf(user: User): UserFormValues {
  return {
    username: user.username,
    email: user.email ?? '',
    first_name: user.firstName,
    last_name: user.lastName,
    is_active: user.isActive,
    is_staff: user.isStaff,
    is_superuser: user.isSuperuser,
  };
}

function typedValues(body: Record<string, unknown>): UserFormValues {
  return {
    username: text(body, 'username'),
    email: text(body, 'email'),
    first_name: text(body, 'first_name'),
    last_name: text(body, 'last_name'),
    is_active: ticked(body, 'is_active'),
    is_staff: ticked(body, 'is_staff'),
    is_superuser: ticked(body, 'is_superuser'),
  };
}

/** A 1-based page number from `?page=`, 1 when absent or not a number. */
/** The proof of presence fields of a form (staff changing their own account). */
function proofOf(body: Record<string, unknown>): Record<string, string> {
  const otp = text(body, 'otp');
  return { current_password: text(body, 'current_password'), ...(otp ? { otp } : {}) };
}

function pageNumber(raw: unknown): number {
  return typeof raw === 'string' && /^\d{1,6}$/.test(raw) && Number(raw) > 0 ? Number(raw) : 1;
}

/** Users: list with search and paging, create, edit, set password, reset two-factor, delete. */
export function addUserPages({ deps, router, page, requireStaff, form }: AdminKit): void {
  const { users, userService, twoFactor } = deps;

  /** Only a superuser may manage another superuser (the service enforces it; the pages say so). */
  const lockedFor = (admin: User, target: User) => target.isSuperuser && !admin.isSuperuser && admin.id !== target.id;

  async function loadTarget(ctx: Context): Promise<User | undefined> {
    const user = await users.findById(String(ctx.params['id'] ?? ''));
    if (!user) page(ctx, 'not-found', { title: 'No such user', back: '/admin/users', what: 'user' }, 404);
    return user;
  }

  router.get('/admin/users', requireStaff, async (ctx) => {
    const search = typeof ctx.query['search'] === 'string' ? ctx.query['search'].trim().slice(0, 200) : '';
    let current = pageNumber(ctx.query['page']);
    const query = (n: number) => ({ offset: (n - 1) * PAGE_SIZE, limit: PAGE_SIZE, search, ordering: [{ field: 'username' as const, descending: false }] });
    let result = await users.list(query(current));
    const pages = Math.max(1, Math.ceil(result.count / PAGE_SIZE));
    if (current > pages) {
      current = pages;
      result = await users.list(query(current));
    }
    const link = (n: number) => `/admin/users?${new URLSearchParams({ ...(search ? { search } : {}), page: String(n) }).toString()}`;
    page(ctx, 'users', {
      title: 'Users',
      search,
      users: result.users,
      count: result.count,
      current,
      pages,
      prev: current > 1 ? link(current - 1) : null,
      next: current < pages ? link(current + 1) : null,
    });
  });

  // ----- create -----
  const renderNew = (ctx: Context, values: UserFormValues, failure?: Problem) =>
    page(
      ctx,
      'user-form',
      { title: 'Add user', mode: 'new', action: '/admin/users/new', values, message: failure?.message ?? null, errors: failure?.fields ?? {} },
      failure?.status ?? 200,
    );

  router.get('/admin/users/new', requireStaff, (ctx) =>
    renderNew(ctx, { username: '', email: '', first_name: '', last_name: '', is_active: true, is_staff: false, is_superuser: false }),
  );

  router.post('/admin/users/new', requireStaff, form, async (ctx) => {
    const body = formOf(ctx);
    const values = typedValues(body);
    if (!csrfOk(ctx)) return renderNew(ctx, values, problem(403, FORM_EXPIRED));
    const admin = adminOf(ctx);
    const input: Record<string, unknown> = {
      username: values.username.trim(),
      email: values.email,
      first_name: values.first_name,
      last_name: values.last_name,
      password: text(body, 'password'),
      is_active: values.is_active,
      is_staff: values.is_staff,
      // Superusers always decide it; anyone else sending it meets the service's 403.
      ...(admin.isSuperuser || values.is_superuser ? { is_superuser: values.is_superuser } : {}),
    };
    try {
      const created = await userService.create({ user: admin, ip: ctx.ip }, input);
      ctx.status = 303;
      ctx.redirect(`/admin/users/${created.id}?done=user-created`);
    } catch (error) {
      renderNew(ctx, values, problemOf(error));
    }
  });

  // ----- edit -----
  const renderEdit = async (ctx: Context, target: User, values: UserFormValues, failure?: Problem) => {
    const admin = adminOf(ctx);
    const { enabled: twoFactorEnabled } = await twoFactor.status(target);
    // The tick boxes of the user's groups (their own form, /admin/users/<id>/groups).
    const [allGroups, memberOf] = await Promise.all([deps.groupService.all(), deps.groupService.groupsOf(target.id)]);
    // What the person sees in their account center, and may end there: staff may end it too.
    const [sessions, apps] = await Promise.all([deps.selfService.sessions(target), connectedApps(target)]);
    page(
      ctx,
      'user-form',
      {
        title: `Edit ${target.username}`,
        groups: allGroups.map((g) => ({ id: g.id, name: g.name, member: memberOf.some((m) => m.id === g.id) })),
        mode: 'edit',
        action: `/admin/users/${target.id}`,
        target,
        self: admin.id === target.id,
        locked: lockedFor(admin, target),
        twoFactorEnabled,
        sessions,
        apps,
        values,
        message: failure?.message ?? null,
        errors: failure?.fields ?? {},
      },
      failure?.status ?? 200,
    );
  };

  /** The person's applications as their account center lists them (our own pages' grants left out). */
  const connectedApps = async (target: User) => (await deps.selfService.connectedApps(target)).filter((app) => !PAGE_CLIENT_IDS.has(app.client_id));

  // ----- sessions and connected applications (staff acting for the person; audited as staff) -----
  router.post('/admin/users/:id/sessions/:sid/end', requireStaff, form, async (ctx) => {
    const target = await loadTarget(ctx);
    if (!target) return;
    if (!csrfOk(ctx)) return renderEdit(ctx, target, valuesOf(target), problem(403, FORM_EXPIRED));
    const admin = adminOf(ctx);
    if (lockedFor(admin, target)) return renderEdit(ctx, target, valuesOf(target), problem(403, 'Only a superuser may end the sessions of a superuser.'));
    try {
      await deps.selfService.endSession(target, String(ctx.params['sid'] ?? '').slice(0, 200), ctx.ip, admin);
    } catch (error) {
      return renderEdit(ctx, target, valuesOf(target), problemOf(error));
    }
    ctx.status = 303;
    ctx.redirect(`/admin/users/${target.id}?done=session-ended#sessions`);
  });

  router.post('/admin/users/:id/applications/:gid/revoke', requireStaff, form, async (ctx) => {
    const target = await loadTarget(ctx);
    if (!target) return;
    if (!csrfOk(ctx)) return renderEdit(ctx, target, valuesOf(target), problem(403, FORM_EXPIRED));
    const admin = adminOf(ctx);
    if (lockedFor(admin, target)) return renderEdit(ctx, target, valuesOf(target), problem(403, 'Only a superuser may revoke the applications of a superuser.'));
    const grantId = String(ctx.params['gid'] ?? '');
    // Only what the page lists: never another person's grant, nor the one our pages sign in with.
    if (!(await connectedApps(target)).some((app) => app.id === grantId)) {
      return renderEdit(ctx, target, valuesOf(target), problem(404, 'That application is not connected to this account (any more).'));
    }
    try {
      await deps.selfService.revokeApp(target, grantId, ctx.ip, admin);
    } catch (error) {
      return renderEdit(ctx, target, valuesOf(target), problemOf(error));
    }
    ctx.status = 303;
    ctx.redirect(`/admin/users/${target.id}?done=app-revoked#applications`);
  });

  router.get('/admin/users/:id', requireStaff, async (ctx) => {
    const target = await loadTarget(ctx);
    if (target) await renderEdit(ctx, target, valuesOf(target));
  });

  router.post('/admin/users/:id', requireStaff, form, async (ctx) => {
    const target = await loadTarget(ctx);
    if (!target) return;
    const body = formOf(ctx);
    const values = typedValues(body);
    const admin = adminOf(ctx);
    const self = admin.id === target.id;
    // Your own flags are not on the form: staff cannot lock themselves out by mistake.
    if (self) Object.assign(values, { is_active: target.isActive, is_staff: target.isStaff, is_superuser: target.isSuperuser });
    if (!csrfOk(ctx)) return renderEdit(ctx, target, values, problem(403, FORM_EXPIRED));
    const changes: Record<string, unknown> = {
      username: values.username.trim(),
      email: values.email,
      first_name: values.first_name,
      last_name: values.last_name,
      ...(self
        ? {}
        : {
            is_active: values.is_active,
            is_staff: values.is_staff,
            ...(admin.isSuperuser || values.is_superuser !== target.isSuperuser ? { is_superuser: values.is_superuser } : {}),
          }),
    };
    // Your own new address needs your password (and code): the account's recovery moves with it.
    if (self && normalizeEmail(values.email) !== target.email) Object.assign(changes, proofOf(body));
    try {
      await userService.update({ user: admin, ip: ctx.ip }, target, changes, { replace: false });
      ctx.status = 303;
      ctx.redirect(`/admin/users/${target.id}?done=user-saved`);
    } catch (error) {
      await renderEdit(ctx, target, values, problemOf(error));
    }
  });

  // ----- password -----
  const renderPassword = async (ctx: Context, target: User, failure?: Problem) => {
    const admin = adminOf(ctx);
    const { enabled: twoFactorEnabled } = await twoFactor.status(target);
    page(
      ctx,
      'user-password',
      {
        title: `Set password for ${target.username}`,
        target,
        self: admin.id === target.id,
        twoFactorEnabled,
        locked: lockedFor(admin, target),
        message: failure?.message ?? null,
        errors: failure?.fields ?? {},
      },
      failure?.status ?? 200,
    );
  };

  router.get('/admin/users/:id/password', requireStaff, async (ctx) => {
    const target = await loadTarget(ctx);
    if (target) await renderPassword(ctx, target);
  });

  router.post('/admin/users/:id/password', requireStaff, form, async (ctx) => {
    const target = await loadTarget(ctx);
    if (!target) return;
    if (!csrfOk(ctx)) return renderPassword(ctx, target, problem(403, FORM_EXPIRED));
    const body = formOf(ctx);
    const admin = adminOf(ctx);
    const password = text(body, 'password');
    if (password !== text(body, 'password2')) {
      return renderPassword(ctx, target, problem(400, 'Please correct the fields marked below.', { password2: ['The two passwords differ.'] }));
    }
    // Your own password needs your current one (the service checks it); others' do not.
    const changes: Record<string, unknown> = { password, ...(admin.id === target.id ? proofOf(body) : {}) };
    try {
      await userService.update({ user: admin, ip: ctx.ip }, target, changes, { replace: false });
      ctx.status = 303;
      ctx.redirect(`/admin/users/${target.id}?done=password-set`);
    } catch (error) {
      await renderPassword(ctx, target, problemOf(error));
    }
  });

  // ----- two-factor reset -----
  const renderTwoFactorReset = async (ctx: Context, target: User, failure?: Problem) => {
    const admin = adminOf(ctx);
    const { enabled } = await twoFactor.status(target);
    page(
      ctx,
      'user-two-factor',
      {
        title: `Reset two-factor for ${target.username}`,
        target,
        enabled,
        locked: lockedFor(admin, target),
        message: failure?.message ?? null,
      },
      failure?.status ?? 200,
    );
  };

  router.get('/admin/users/:id/two-factor', requireStaff, async (ctx) => {
    const target = await loadTarget(ctx);
    if (target) await renderTwoFactorReset(ctx, target);
  });

  router.post('/admin/users/:id/two-factor', requireStaff, form, async (ctx) => {
    const target = await loadTarget(ctx);
    if (!target) return;
    if (!csrfOk(ctx)) return renderTwoFactorReset(ctx, target, problem(403, FORM_EXPIRED));
    try {
      await twoFactor.adminReset(adminOf(ctx), target, { ip: ctx.ip });
      ctx.status = 303;
      ctx.redirect(`/admin/users/${target.id}?done=two-factor-reset`);
    } catch (error) {
      await renderTwoFactorReset(ctx, target, problemOf(error));
    }
  });

  // ----- delete -----
  const renderDelete = (ctx: Context, target: User, failure?: Problem) => {
    const admin = adminOf(ctx);
    page(
      ctx,
      'user-delete',
      {
        title: `Delete ${target.username}`,
        target,
        self: admin.id === target.id,
        locked: lockedFor(admin, target),
        message: failure?.message ?? null,
      },
      failure?.status ?? 200,
    );
  };

  router.get('/admin/users/:id/delete', requireStaff, async (ctx) => {
    const target = await loadTarget(ctx);
    if (target) renderDelete(ctx, target);
  });

  router.post('/admin/users/:id/delete', requireStaff, form, async (ctx) => {
    const target = await loadTarget(ctx);
    if (!target) return;
    if (!csrfOk(ctx)) return renderDelete(ctx, target, problem(403, FORM_EXPIRED));
    const admin = adminOf(ctx);
    if (admin.id === target.id) return renderDelete(ctx, target, problem(400, 'You cannot delete your own account here.'));
    try {
      await userService.remove({ user: admin, ip: ctx.ip }, target);
      ctx.status = 303;
      ctx.redirect('/admin/users?done=user-deleted');
    } catch (error) {
      renderDelete(ctx, target, problemOf(error));
    }
  });
}
