import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { interactionUid } from '../../core/accounts/password-reset.js';
import type { Registration } from '../../core/accounts/registration.js';
import type { Translator } from '../../locales/i18n.js';
import { csrfToken, csrfValid } from '../http/csrf.js';
import { formParser, text } from '../http/forms.js';
import { problemOf } from '../http/page-problem.js';
import type { Views } from '../http/views.js';
import { browserTranslator, wantsHtml } from './locale.js';

export interface SignupDeps {
  registration: Registration;
  views: Views;
  secureCookies: boolean;
  allowRegistration: boolean;
}

interface Typed {
  username: string;
  email: string;
}

/**
 * The sign-up page, /account/register (when ALLOW_REGISTRATION): a form in the login page's
 * look that states the password policy, re-renders with each field's message next to it
 * (keeping what was typed, never the passwords), and ends with "check your email" (the user
 * service mails the verification link). Opened from an interaction's login page it carries
 * the interaction's uid, and the last page leads back to that sign-in.
 */
export function createSignupRouter({ registration, views, secureCookies, allowRegistration }: SignupDeps): Router {
  const router = new Router();
  const form = formParser({ limit: '16kb' });

  function page(ctx: Context, status: number, view: string, data: Record<string, unknown>, i18n: Translator): void {
    ctx.status = status;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = views.render(view, { csrf: csrfToken(ctx, { secure: secureCookies }), ...data }, i18n.locale);
  }

  function closed(ctx: Context, i18n: Translator): void {
    page(ctx, 403, 'account/message', { title: i18n.t('signup.closed.title'), problem: i18n.t('signup.closed.lead') }, i18n);
  }

  function signupForm(ctx: Context, status: number, i18n: Translator, data: Typed & { uid?: string | undefined; message?: string; errors?: Record<string, string[]> }): void {
    page(ctx, status, 'signup', { errors: {}, ...data }, i18n);
  }

  router.get('/account/register', async (ctx) => {
    const i18n = browserTranslator(ctx);
    if (!allowRegistration) return closed(ctx, i18n);
    signupForm(ctx, 200, i18n, { username: '', email: '', uid: interactionUid(ctx.query['uid']) });
  });

  router.post('/account/register', form, async (ctx) => {
    const i18n = browserTranslator(ctx);
    if (!allowRegistration) return closed(ctx, i18n);
    const body = ctx.request.body as Record<string, unknown>;
    const uid = interactionUid(body['uid']);
    const typed: Typed = { username: text(body, 'username').trim(), email: text(body, 'email').trim() };
    const password = text(body, 'password');
    const again = (status: number, message: string, errors: Record<string, string[]> = {}) => signupForm(ctx, status, i18n, { ...typed, uid, message, errors });
    if (!csrfValid(ctx, body['csrf'])) return again(403, i18n.t('form.expired'));
    if (password !== text(body, 'confirm_password')) {
      return again(400, i18n.t('account.fields'), { confirm_password: [i18n.t('password.mismatch')] });
    }
    try {
      const user = await registration.register({ ...typed, password }, ctx.ip);
      page(ctx, 201, 'account/message', {
        title: i18n.t('signup.done.title'),
        lead: i18n.t('signup.done.lead', { username: user.username, email: user.email ?? typed.email }),
        link: uid ? { href: `/interaction/${uid}`, text: i18n.t('signup.continue') } : { href: '/account/', text: i18n.t('account.signIn') },
      }, i18n);
    } catch (error) {
      const shown = problemOf(error, i18n);
      if (shown.retryAfter !== undefined) ctx.set('Retry-After', String(shown.retryAfter));
      again(shown.status, shown.message, shown.fields);
    }
  });

  return router;
}

/**
 * A browser opening `GET /users/register/` (the older provider's JSON endpoint, POST only)
 * is sent to the sign-up page; API clients keep their 405 and their POST. A middleware, not
 * a route: a GET route on that path would make the routers' 405 a 404.
 */
export function sendBrowsersToSignup(): Middleware {
  return async (ctx, next) => {
    if ((ctx.method === 'GET' || ctx.method === 'HEAD') && ctx.path === '/users/register/' && wantsHtml(ctx)) return ctx.redirect('/account/register');
    return next();
  };
}
