import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { TwoFactorService } from '../../core/two-factor/settings.js';
import type { UserService } from '../../core/accounts/user-service.js';
import type { SelfService } from '../../core/accounts/self-service.js';
import type { AuditLog } from '../../core/audit/audit-log.js';
import type { ClientService } from '../../core/clients/client-service.js';
import { csrfToken } from '../http/csrf.js';
import type { Views } from '../http/views.js';
import type { KeyStore } from '../../core/keys/key-store.js';
import type { ProviderHost } from '../../oidc/provider-host.js';
import type { UserRepository } from '../../storage/users.js';
import type { ResourceService } from '../../core/resources/resource-service.js';
import type { GroupService } from '../../core/groups/group-service.js';
import { addGroupPages } from './groups-pages.js';
import { adminOf, createAdminAuth } from './admin-auth.js';
import { addApplicationPages } from './applications-pages.js';
import { addAuditPages } from './audit-pages.js';
import { addKeyPages } from './keys-pages.js';
import { addResourcePages } from './resources-pages.js';
import { day, formParser, grantName, noticeFor, when, type AdminKit } from './kit.js';
import { addUserPages } from './users-pages.js';

export interface AdminDeps {
  provider: () => Provider;
  host: ProviderHost;
  users: UserRepository;
  userService: UserService;
  /** The account center's session and application functions, used by staff on a user's page. */
  selfService: SelfService;
  clientService: ClientService;
  resourceService: ResourceService;
  groupService: GroupService;
  twoFactor: TwoFactorService;
  keyStore: KeyStore;
  audit: AuditLog;
  views: Views;
  publicUrl: string;
  secureCookies: boolean;
}

/**
 * Server-rendered administration under /admin/ for staff: users, applications, API resources,
 * signing keys.
 * Every form carries the CSRF token; every value is escaped by the templates.
 */
export function createAdminRouter(deps: AdminDeps): Router {
  const { views, secureCookies } = deps;
  const router = new Router();

  /** Renders an admin page inside views/admin/layout.eta. */
  function page(ctx: Context, view: string, data: Record<string, unknown>, status = 200): void {
    ctx.status = status;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = views.render(`admin/${view}`, {
      csrf: csrfToken(ctx, { secure: secureCookies }),
      admin: ctx.state['admin'] ?? null,
      flash: noticeFor(ctx),
      message: null,
      errors: {},
      when,
      day,
      grantName,
      ...data,
    });
  }

  const auth = createAdminAuth({
    provider: deps.provider,
    users: deps.users,
    publicUrl: deps.publicUrl,
    secureCookies,
    forbidden: (ctx, user) =>
      page(ctx, 'forbidden', { title: 'Not allowed', signedInAs: user.username, logoutUrl: `${deps.publicUrl}/o/session/end` }, 403),
  });

  router.get('/admin/callback', auth.callback);
  // django-oauth-toolkit's paths lead to the same pages.
  router.get('/o/applications', (ctx) => ctx.redirect('/admin/applications/'));
  router.get('/o/applications/register', (ctx) => ctx.redirect('/admin/applications/new'));

  router.get('/admin', auth.requireStaff, async (ctx) => {
    const [userCount, clients, keys] = await Promise.all([deps.users.count(), deps.clientService.list(), deps.keyStore.list()]);
    page(ctx, 'dashboard', {
      title: 'Administration',
      userCount,
      clientCount: clients.length,
      keyCount: keys.filter((k) => k.status === 'current').length,
      adminName: adminOf(ctx).username,
    });
  });

  const kit: AdminKit = { deps, router, page, requireStaff: auth.requireStaff, form: formParser() };
  addUserPages(kit);
  addApplicationPages(kit);
  addResourcePages(kit);
  addGroupPages(kit);
  addKeyPages(kit);
  addAuditPages(kit);

  return router;
}
