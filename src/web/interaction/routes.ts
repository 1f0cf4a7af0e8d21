import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { errors as oidcErrors } from 'oidc-provider';
import type { Authenticate } from '../../core/accounts/authenticate.js';
import type { SecondFactor } from '../../core/two-factor/code-check.js';
import { csrfToken, csrfValid } from '../http/csrf.js';
import { formParser } from '../http/forms.js';
import { chooseLocale, translator, type Translator } from '../../locales/i18n.js';
import type { Views } from '../http/views.js';
import { acrForLogin, essentialAcrUnattainable } from '../../oidc/acr.js';
import { OIDC_SCOPES } from '../../core/accounts/claims.js';
import type { FindResource } from '../../oidc/resource-indicators.js';
import type { UserRepository } from '../../storage/users.js';
import { pendingSecondFactor, rememberPendingSecondFactor } from './pending-second-factor.js';
import { describeClaims, describeResourceScopes, describeScopes } from './scope-descriptions.js';

export interface InteractionDeps {
  provider: () => Provider;
  authenticate: Authenticate;
  /** Checks the code of the second login step for accounts with two-factor authentication. */
  secondFactor: SecondFactor;
  users: UserRepository;
  views: Views;
  secureCookies: boolean;
  /** Names the APIs (RFC 8707 resources) an application asks to use on the consent page. */
  findResource: FindResource;
  /** ALLOW_REGISTRATION: the login page links to the sign-up page. */
  allowRegistration?: boolean;
}

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

/** The lockout message: the same for every account, existing or not. */
export function tooManyAttempts(retryAfter: number, i18n: Translator): string {
  const minutes = Math.max(1, Math.ceil(retryAfter / 60));
  return i18n.t(minutes === 1 ? 'login.locked.one' : 'login.locked.other', { minutes });
}

/**
 * The language of an interaction's pages: the relying party's `ui_locales` (kept in the
 * interaction's params, also for the device flow), else the browser's Accept-Language.
 */
function interactionTranslator(ctx: Context, details?: Details): Translator {
  return translator(chooseLocale({ uiLocales: details?.params['ui_locales'], acceptLanguage: ctx.get('accept-language') }));
}

const UNMET_ACR = { error: 'unmet_authentication_requirements', error_description: 'the requested acr cannot be obtained' };

/**
 * Login and consent pages for node-oidc-provider interactions. Each step ends with
 * `interactionResult`, so the provider decides every redirect. The interaction cookie ties
 * an interaction to the browser that started it; the CSRF cookie ties each form to it.
 * Accounts with two-factor authentication sign in in two steps: password, then a code (TOTP
 * or recovery code); only the code finishes the login, with amr ["pwd", "otp"].
 */
export function createInteractionRouter({ provider, authenticate, secondFactor, users, views, secureCookies, findResource, allowRegistration = false }: InteractionDeps): Router {
  const router = new Router({ prefix: '/interaction' });
  const form = formParser({ limit: '16kb' });

  function page(ctx: Context, status: number, view: string, data: Record<string, unknown>, i18n: Translator): void {
    ctx.status = status;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = views.render(view, { csrf: csrfToken(ctx, { secure: secureCookies }), ...data }, i18n.locale);
  }

  /** Loads the interaction for this browser, or renders the error page and returns undefined. */
  async function load(ctx: Context): Promise<Details | undefined> {
    try {
      const details = await provider().interactionDetails(ctx.req, ctx.res);
      if (details.uid === ctx.params['uid']) return details;
    } catch (error) {
      if (!(error instanceof oidcErrors.SessionNotFound)) throw error;
    }
    const i18n = interactionTranslator(ctx);
    page(ctx, 400, 'error', {
      title: i18n.t('interaction.expired.title'),
      error: 'invalid_request',
      description: i18n.t('interaction.expired.description'),
    }, i18n);
    return undefined;
  }

  async function finish(ctx: Context, result: Record<string, unknown>, merge: boolean): Promise<void> {
    const returnTo = await provider().interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    ctx.status = 303;
    ctx.redirect(returnTo);
  }

  /** Each API the application asks to use, by name, with the scopes it asks there. */
  async function describeApis(missing: Record<string, string[]>, i18n: Translator) {
    return Promise.all(
      Object.entries(missing).map(async ([identifier, scopes]) => {
        const resource = await findResource(identifier);
        return { name: resource?.name ?? identifier, identifier, scopes: describeResourceScopes(scopes, { builtIn: resource?.builtIn ?? false }, i18n) };
      }),
    );
  }

  /** The page the interaction is at; `passwordAgain` shows the password step even while a code is pending. */
  async function renderPrompt(ctx: Context, details: Details, status = 200, message?: string, { passwordAgain = false } = {}): Promise<void> {
    if (details.prompt.name === 'login' && essentialAcrUnattainable(details.prompt.details)) {
      // No login can ever give it: the provider would ask for one login after another.
      return finish(ctx, UNMET_ACR, false);
    }
    const uid = details.uid;
    const i18n = interactionTranslator(ctx, details);
    const client = await provider().Client.find(String(details.params['client_id']));
    const clientName = client?.clientName ?? String(details.params['client_id']);
    if (details.prompt.name === 'login' && !passwordAgain && pendingSecondFactor(details)) {
      page(ctx, status, 'login-two-factor', { uid, clientName, message }, i18n);
      return;
    }
    if (details.prompt.name === 'login') {
      const hint = typeof details.params['login_hint'] === 'string' ? details.params['login_hint'] : '';
      page(ctx, status, 'login', {
        uid,
        clientName,
        username: (ctx.request.body as Record<string, unknown> | undefined)?.['username'] ?? hint,
        message,
        allowRegistration,
      }, i18n);
      return;
    }
    const promptDetails = details.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    const apis = await describeApis(promptDetails.missingResourceScopes ?? {}, i18n);
    // Without missing OpenID scopes (consent asked for API scopes only, or a native client
    // always asked), list what was requested of ours, never another API's scope names.
    const requested = String(details.params['scope'] ?? '').split(' ').filter((s) => OIDC_SCOPES.includes(s));
    page(ctx, status, 'consent', {
      uid,
      clientName,
      scopes: describeScopes(promptDetails.missingOIDCScope ?? (apis.length ? [] : requested), i18n),
      apis,
      claims: describeClaims(promptDetails.missingOIDCClaims ?? [], i18n),
      message,
    }, i18n);
  }

  router.get('/:uid', async (ctx) => {
    const details = await load(ctx);
    if (details) await renderPrompt(ctx, details);
  });

  router.post('/:uid/login', form, async (ctx) => {
    const details = await load(ctx);
    if (!details) return;
    const body = ctx.request.body as Record<string, unknown>;
    const i18n = interactionTranslator(ctx, details);
    if (!csrfValid(ctx, body['csrf'])) return renderPrompt(ctx, details, 403, i18n.t('form.expired'), { passwordAgain: true });
    if (details.prompt.name !== 'login') return renderPrompt(ctx, details, 400);

    const result = await authenticate(body['username'], body['password'], { ip: ctx.ip, via: 'login_page', secondFactor: 'deferred' });
    if (!result.ok && result.reason === 'locked') {
      ctx.set('Retry-After', String(result.retryAfter));
      return renderPrompt(ctx, details, 429, tooManyAttempts(result.retryAfter, i18n), { passwordAgain: true });
    }
    if (!result.ok) return renderPrompt(ctx, details, 401, i18n.t('login.invalid'), { passwordAgain: true });
    const accountId = String(result.user.id);
    if (result.secondFactorPending) {
      // The code comes on the next page (a GET, so reloading it never re-sends the password).
      await rememberPendingSecondFactor(provider(), ctx.req, ctx.res, accountId);
      ctx.status = 303;
      ctx.redirect(`/interaction/${details.uid}`);
      return;
    }
    // An essential mfa acr cannot be met by a password-only account.
    const acr = acrForLogin(details.prompt.details, { secondFactor: false });
    if (!acr) return finish(ctx, UNMET_ACR, false);
    // acr and amr go into the session and from there into every ID token of this login.
    await finish(ctx, { login: { accountId, acr, amr: ['pwd'] } }, false);
  });

  router.post('/:uid/two-factor', form, async (ctx) => {
    const details = await load(ctx);
    if (!details) return;
    const body = ctx.request.body as Record<string, unknown>;
    const i18n = interactionTranslator(ctx, details);
    if (!csrfValid(ctx, body['csrf'])) return renderPrompt(ctx, details, 403, i18n.t('form.expired'));
    if (details.prompt.name !== 'login') return renderPrompt(ctx, details, 400);
    const accountId = pendingSecondFactor(details);
    const user = accountId ? await users.findById(accountId) : undefined;
    if (!user?.isActive || !(await secondFactor.enabled(user.id))) {
      // Too late, never started, or the account changed meanwhile (deactivated, two-factor
      // reset): back to the password, forgetting the password step.
      if (details.result) await provider().interactionResult(ctx.req, ctx.res, {}, { mergeWithLastSubmission: false });
      return renderPrompt(ctx, details, 400, i18n.t('twoFactor.restart'), { passwordAgain: true });
    }

    const result = await secondFactor.completeLogin(user, body['code'], { ip: ctx.ip, via: 'login_page' });
    if (!result.ok && result.reason === 'locked') {
      ctx.set('Retry-After', String(result.retryAfter));
      return renderPrompt(ctx, details, 429, tooManyAttempts(result.retryAfter, i18n));
    }
    if (!result.ok) return renderPrompt(ctx, details, 401, i18n.t('twoFactor.invalid'));
    const acr = acrForLogin(details.prompt.details, { secondFactor: true });
    if (!acr) return finish(ctx, UNMET_ACR, false);
    // A recovery code is a one-time password too: amr "otp" (RFC 8176) either way.
    await finish(ctx, { login: { accountId: String(user.id), acr, amr: ['pwd', 'otp'] } }, false);
  });

  router.post('/:uid/confirm', form, async (ctx) => {
    const details = await load(ctx);
    if (!details) return;
    const body = ctx.request.body as Record<string, unknown>;
    if (!csrfValid(ctx, body['csrf'])) return renderPrompt(ctx, details, 403, interactionTranslator(ctx, details).t('form.expired'));
    if (details.prompt.name !== 'consent') return renderPrompt(ctx, details, 400);

    if (body['decision'] !== 'allow') {
      return finish(ctx, { error: 'access_denied', error_description: 'The user denied the request.' }, false);
    }
    const p = provider();
    const accountId = details.session?.accountId;
    if (!accountId) return renderPrompt(ctx, details, 400);
    const grant = details.grantId
      ? await p.Grant.find(details.grantId)
      : new p.Grant({ accountId, clientId: String(details.params['client_id']) });
    if (!grant) return renderPrompt(ctx, details, 400);
    const missing = details.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    await finish(ctx, { consent: details.grantId ? {} : { grantId } }, true);
  });

  return router;
}
