import type { Context } from 'koa';
import { csrfOk, formOf, text } from '../http/forms.js';
import { ACCOUNT_CLIENT_ID } from '../../oidc/first-party-pages.js';
import { accountOf, doneRedirect, i18nOf, type AccountKit } from './kit.js';
import { problem, problemOf, type Problem } from './problems.js';

/**
 * Changing the password: the current one is required (checked through the login throttle),
 * and every other session, grant and token ends while this browser stays signed in.
 */
export function addPasswordPage({ deps, router, page, requireAccount, form }: AccountKit): void {
  const render = (ctx: Context, failure?: Problem) => page(ctx, 'password', 'password', { title: i18nOf(ctx).t('password.title') }, failure);

  router.get('/account/password', requireAccount, (ctx) => render(ctx));

  router.post('/account/password', requireAccount, form, async (ctx) => {
    const { user, session } = accountOf(ctx);
    const i18n = i18nOf(ctx);
    if (!csrfOk(ctx)) return render(ctx, problem(403, i18n.t('form.expired')));
    const body = formOf(ctx);
    const next = text(body, 'new_password');
    if (next !== text(body, 'confirm_password')) {
      return render(ctx, problem(400, i18n.t('account.fields'), { confirm_password: [i18n.t('password.mismatch')] }));
    }
    try {
      const grantId = session.grantIdFor(ACCOUNT_CLIENT_ID);
      await deps.selfService.changePassword(
        user,
        { current_password: text(body, 'current_password'), new_password: next, ...(text(body, 'otp') ? { otp: text(body, 'otp') } : {}) },
        // This browser's login, and the account center's grant in it, stay.
        { ip: ctx.ip, keep: { sessionUid: session.uid, ...(grantId ? { grantId } : {}) } },
      );
      doneRedirect(ctx, '/account/password', 'password-changed');
    } catch (error) {
      render(ctx, problemOf(error, i18n));
    }
  });
}
