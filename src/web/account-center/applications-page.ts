import type { Context } from 'koa';
import type { ConnectedApp } from '../../core/accounts/self-service.js';
import { csrfOk } from '../http/forms.js';
import { describeResourceScopes, describeScopes } from '../interaction/scope-descriptions.js';
import { PAGE_CLIENT_IDS } from '../../oidc/first-party-pages.js';
import type { User } from '../../storage/users.js';
import { accountOf, doneRedirect, i18nOf, type AccountKit } from './kit.js';
import { problem, problemOf, type Problem } from './problems.js';

/** Connected applications: what each may do, in words, and a button that revokes its access. */
export function addApplicationsPage({ deps, router, page, requireAccount, form }: AccountKit): void {
  /** The person's applications, without our own pages' grants: revoking those would only break the pages. */
  async function listed(user: User): Promise<ConnectedApp[]> {
    return (await deps.selfService.connectedApps(user)).filter((app) => !PAGE_CLIENT_IDS.has(app.client_id));
  }

  async function render(ctx: Context, failure?: Problem): Promise<void> {
    const i18n = i18nOf(ctx);
    const apps = await Promise.all((await listed(accountOf(ctx).user)).map(async (app) => ({
      id: app.id,
      clientId: app.client_id,
      name: app.client_name,
      grantedAt: app.granted_at,
      scopes: describeScopes(app.scopes, i18n),
      // Each API by its name, its scopes in words, as the consent page showed them.
      resources: await Promise.all(
        Object.entries(app.resources).map(async ([indicator, scopes]) => {
          const resource = await deps.findResource(indicator);
          return { indicator, name: resource?.name ?? indicator, scopes: describeResourceScopes(scopes, { builtIn: resource?.builtIn ?? false }, i18n) };
        }),
      ),
    })));
    page(ctx, 'applications', 'applications', { title: i18n.t('apps.title'), apps }, failure);
  }

  router.get('/account/applications', requireAccount, (ctx) => render(ctx));

  router.post('/account/applications/:id/revoke', requireAccount, form, async (ctx) => {
    const { user } = accountOf(ctx);
    const i18n = i18nOf(ctx);
    if (!csrfOk(ctx)) return render(ctx, problem(403, i18n.t('form.expired')));
    const grantId = String(ctx.params['id']);
    // Only what this page lists: never another person's grant, nor the one the pages sign in with.
    if (!(await listed(user)).some((app) => app.id === grantId)) return render(ctx, problem(404, i18n.t('apps.notFound')));
    try {
      await deps.selfService.revokeApp(user, grantId, ctx.ip);
    } catch (error) {
      return render(ctx, problemOf(error, i18n));
    }
    doneRedirect(ctx, '/account/applications', 'app-revoked');
  });
}
