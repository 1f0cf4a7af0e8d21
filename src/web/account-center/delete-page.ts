import type { Context } from 'koa';
import { LastSuperuser } from '../../core/errors.js';
import { csrfOk, formOf, text } from '../http/forms.js';
import { accountOf, i18nOf, type AccountKit } from './kit.js';
import { problem, problemOf, type Problem } from './problems.js';

/**
 * Deleting one's own account: the username typed again and the password (throttled like a
 * login) confirm it; the last active superuser is refused. Afterwards nobody is signed in.
 */
export function addDeletePage({ deps, router, page, message, requireAccount, form }: AccountKit): void {
  async function render(ctx: Context, typedUsername: string, failure?: Problem): Promise<void> {
    const { user } = accountOf(ctx);
    const lastSuperuser = await deps.userService.isLastSuperuser(user);
    page(ctx, 'delete', 'delete', { title: i18nOf(ctx).t('delete.title'), typedUsername, lastSuperuser }, failure);
  }

  router.get('/account/delete', requireAccount, (ctx) => render(ctx, ''));

  router.post('/account/delete', requireAccount, form, async (ctx) => {
    const { user } = accountOf(ctx);
    const i18n = i18nOf(ctx);
    const body = formOf(ctx);
    const typedUsername = text(body, 'username');
    if (!csrfOk(ctx)) return render(ctx, typedUsername, problem(403, i18n.t('form.expired')));
    try {
      await deps.selfService.deleteAccount(user, { username: typedUsername, password: text(body, 'password'), otp: text(body, 'otp') }, { ip: ctx.ip });
    } catch (error) {
      // The page says why in its own words instead of showing the form.
      if (error instanceof LastSuperuser) return render(ctx, typedUsername, problem(409, ''));
      return render(ctx, typedUsername, problemOf(error, i18n));
    }
    message(ctx, 200, { title: i18n.t('deleted.title'), lead: i18n.t('deleted.lead') });
  });
}
