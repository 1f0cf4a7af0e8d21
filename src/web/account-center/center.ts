import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { EmailVerification } from '../../core/accounts/email-verification.js';
import type { SelfService } from '../../core/accounts/self-service.js';
import type { TwoFactorService } from '../../core/two-factor/settings.js';
import type { FindResource } from '../../oidc/resource-indicators.js';
import type { UserService } from '../../core/accounts/user-service.js';
import { csrfToken } from '../http/csrf.js';
import { formParser } from '../http/forms.js';
import type { Views } from '../http/views.js';
import { ACCOUNT_PAGES, createPagesLogin, ensurePagesClient } from '../../oidc/first-party-pages.js';
import type { ClientRepository } from '../../storage/clients.js';
import type { UserRepository } from '../../storage/users.js';
import { addApplicationsPage } from './applications-page.js';
import { addDeletePage } from './delete-page.js';
import { accountOf, formatWhen, i18nOf, noticeFor, TWO_FACTOR_PATH, type AccountKit } from './kit.js';
import { addPasswordPage } from './password-page.js';
import { addProfilePages } from './profile-pages.js';
import { addSessionsPage } from './sessions-page.js';
import { addTwoFactorPages } from './two-factor-pages.js';

/** Creates the account center's client on first start (its redirect URIs are each process's own). */
export async function ensureAccountClient(clients: ClientRepository): Promise<void> {
  await ensurePagesClient(clients, ACCOUNT_PAGES);
}

export interface AccountCenterDeps {
  provider: () => Provider;
  users: UserRepository;
  userService: UserService;
  selfService: SelfService;
  verification: EmailVerification;
  views: Views;
  publicUrl: string;
  secureCookies: boolean;
  twoFactor: TwoFactorService;
  /** The API resources a grant may name (their names and scopes for the applications page). */
  findResource: FindResource;
}

/**
 * The account center under /account/, where people whose accounts live here help themselves
 * (as in Keycloak's account console or Logto's account center): profile, password,
 * connected applications, sessions, deleting the account. It signs people in through our
 * own provider like the admin pages, so any active user gets in through the login page.
 * Pages look like the login pages and speak the browser's language; every form carries the
 * CSRF token; nothing is cached.
 */
export function createAccountCenterRouter(deps: AccountCenterDeps): Router {
  const { views, secureCookies } = deps;
  const features = { twoFactor: true };
  const router = new Router();
  const login = createPagesLogin({ provider: deps.provider, users: deps.users, publicUrl: deps.publicUrl, secureCookies, client: ACCOUNT_PAGES });

  const render = (ctx: Context, view: string, data: Record<string, unknown>, status: number) => {
    const i18n = i18nOf(ctx);
    ctx.status = status;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = views.render(`account/${view}`, { csrf: csrfToken(ctx, { secure: secureCookies }), ...data }, i18n.locale);
  };

  const page: AccountKit['page'] = (ctx, section, view, data, failure) => {
    const i18n = i18nOf(ctx);
    if (failure?.retryAfter) ctx.set('Retry-After', String(failure.retryAfter));
    render(
      ctx,
      view,
      {
        user: accountOf(ctx).user,
        twoFactorEnabled: ctx.state['twoFactorEnabled'] === true,
        section,
        features,
        twoFactorPath: TWO_FACTOR_PATH,
        notice: failure ? null : noticeFor(ctx, i18n),
        message: failure?.message ?? null,
        errors: failure?.fields ?? {},
        when: formatWhen(i18n),
        ...data,
      },
      failure?.status ?? 200,
    );
  };

  const message: AccountKit['message'] = (ctx, status, data) => render(ctx, 'message', data, status);

  /** A form sent after the login ended (signed out in another tab, session expired). */
  function signedOut(ctx: Context): void {
    const i18n = i18nOf(ctx);
    message(ctx, 401, {
      title: i18n.t('account.signedOut.title'),
      problem: i18n.t('account.signedOut.lead'),
      link: { href: '/account/', text: i18n.t('account.signIn') },
    });
  }

  async function requireAccount(ctx: Context, next: Next): Promise<void> {
    const signedIn = await login.signedIn(ctx, signedOut);
    if (!signedIn) return;
    ctx.state['account'] = signedIn;
    // Forms that change the account ask for a code too when two-factor is on.
    ctx.state['twoFactorEnabled'] = (await deps.twoFactor.status(signedIn.user)).enabled;
    await next();
  }

  router.get('/account/callback', login.callback);

  const kit: AccountKit = { deps, router, page, message, requireAccount, form: formParser() };
  addProfilePages(kit);
  addPasswordPage(kit);
  addApplicationsPage(kit);
  addSessionsPage(kit);
  addDeletePage(kit);
  addTwoFactorPages(kit, deps.twoFactor);
  return router;
}
