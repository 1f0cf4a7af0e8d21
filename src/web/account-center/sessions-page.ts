import type { Context } from 'koa';
import { csrfOk } from '../http/forms.js';
import { accountOf, doneRedirect, i18nOf, type AccountKit } from './kit.js';
import { problem, problemOf, type Problem } from './problems.js';

/** Login sessions: when, with which applications, this device marked; each can be signed out. */
export function addSessionsPage({ deps, router, page, requireAccount, form }: AccountKit): void {
  async function render(ctx: Context, failure?: Problem): Promise<void> {
    const { user, session } = accountOf(ctx);
    const sessions = await deps.selfService.sessions(user, session.uid);
    page(ctx, 'sessions', 'sessions', { title: i18nOf(ctx).t('sessions.title'), sessions }, failure);
  }

  router.get('/account/sessions', requireAccount, (ctx) => render(ctx));

  router.post('/account/sessions/:id/end', requireAccount, form, async (ctx) => {
    const { user, session } = accountOf(ctx);
    const i18n = i18nOf(ctx);
    if (!csrfOk(ctx)) return render(ctx, problem(403, i18n.t('form.expired')));
    const uid = String(ctx.params['id']);
    try {
      // Another person's session is "no such session", as one that has ended already.
      await deps.selfService.endSession(user, uid, ctx.ip);
    } catch (error) {
      return render(ctx, problemOf(error, i18n));
    }
    if (uid !== session.uid) return doneRedirect(ctx, '/account/sessions', 'session-ended');
    // This browser's own login has ended: the account center now leads to the login page.
    ctx.status = 303;
    ctx.redirect('/account/');
  });
}
