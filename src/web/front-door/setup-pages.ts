import Router from '@koa/router';
import type { Context } from 'koa';
import type { InitialSetup } from '../../core/accounts/initial-setup.js';
import type { Translator } from '../../locales/i18n.js';
import { csrfToken, csrfValid } from '../http/csrf.js';
import { formParser, text } from '../http/forms.js';
import { problemOf } from '../http/page-problem.js';
import type { Views } from '../http/views.js';
import { browserTranslator } from './locale.js';

export interface SetupDeps {
  initialSetup: InitialSetup;
  views: Views;
  secureCookies: boolean;
}

/**
 * /setup?token=...: the one-time page that creates the first superuser (the link is printed
 * in the log at start while there is none). The token travels in the query string of the
 * GET (our request log records paths only) and in a hidden field of the POST. A used,
 * expired or unknown link, and every link once a superuser exists, is refused.
 */
export function createSetupRouter({ initialSetup, views, secureCookies }: SetupDeps): Router {
  const router = new Router();
  const form = formParser({ limit: '16kb' });

  function page(ctx: Context, status: number, view: string, data: Record<string, unknown>, i18n: Translator): void {
    ctx.status = status;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = views.render(view, { csrf: csrfToken(ctx, { secure: secureCookies }), ...data }, i18n.locale);
  }

  function refused(ctx: Context, reason: 'invalid' | 'done', i18n: Translator): void {
    if (reason === 'done') {
      return page(ctx, 410, 'account/message', {
        title: i18n.t('setup.done.title'),
        problem: i18n.t('setup.done.lead'),
        link: { href: '/admin/', text: i18n.t('setup.admin') },
      }, i18n);
    }
    page(ctx, 400, 'account/message', { title: i18n.t('setup.invalid.title'), problem: i18n.t('setup.invalid.lead') }, i18n);
  }

  router.get('/setup', async (ctx) => {
    const i18n = browserTranslator(ctx);
    const token = ctx.query['token'];
    const state = await initialSetup.state(token);
    if (state !== 'open') return refused(ctx, state, i18n);
    page(ctx, 200, 'setup', { token, username: '', email: '', errors: {} }, i18n);
  });

  router.post('/setup', form, async (ctx) => {
    const i18n = browserTranslator(ctx);
    const body = ctx.request.body as Record<string, unknown>;
    const token = text(body, 'token');
    const typed = { username: text(body, 'username').trim(), email: text(body, 'email').trim() };
    const password = text(body, 'password');
    const again = (status: number, message: string, errors: Record<string, string[]> = {}) => page(ctx, status, 'setup', { token, ...typed, message, errors }, i18n);
    // Checked without using the link, so an expired form or a typo costs nothing.
    const state = await initialSetup.state(token);
    if (state !== 'open') return refused(ctx, state, i18n);
    if (!csrfValid(ctx, body['csrf'])) return again(403, i18n.t('form.expired'));
    if (password !== text(body, 'confirm_password')) {
      return again(400, i18n.t('account.fields'), { confirm_password: [i18n.t('password.mismatch')] });
    }
    try {
      const result = await initialSetup.complete(token, { ...typed, password }, ctx.ip);
      if (!result.ok) return refused(ctx, result.reason, i18n);
      page(ctx, 201, 'account/message', {
        title: i18n.t('setup.created.title'),
        lead: i18n.t('setup.created.lead', { username: result.user.username }),
        link: { href: '/admin/', text: i18n.t('setup.admin') },
      }, i18n);
    } catch (error) {
      const shown = problemOf(error, i18n);
      again(shown.status, shown.message, shown.fields);
    }
  });

  return router;
}
