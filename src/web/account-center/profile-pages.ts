import type { Context } from 'koa';
import { csrfOk, formOf, text } from '../http/forms.js';
import type { User } from '../../storage/users.js';
import { accountOf, doneRedirect, i18nOf, type AccountKit } from './kit.js';
import { problem, problemOf, type Problem } from './problems.js';

/** The fields of the profile form, as the user service names them. */
const FIELDS = ['username', 'first_name', 'last_name', 'email'] as const;
type ProfileValues = Record<(typeof FIELDS)[number], string>;

const valuesOf = (user: User): ProfileValues => ({ username: user.username, first_name: user.firstName, last_name: user.lastName, email: user.email ?? '' });

/** The account center's home: the profile, its edit form, and a new verification link on request. */
export function addProfilePages({ deps, router, page, requireAccount, form }: AccountKit): void {
  const render = (ctx: Context, values: ProfileValues, failure?: Problem) =>
    page(ctx, 'profile', 'profile', { title: i18nOf(ctx).t('profile.title'), values }, failure);

  router.get('/account', requireAccount, (ctx) => render(ctx, valuesOf(accountOf(ctx).user)));

  router.post('/account/profile', requireAccount, form, async (ctx) => {
    const { user } = accountOf(ctx);
    const i18n = i18nOf(ctx);
    const body = formOf(ctx);
    const values = Object.fromEntries(FIELDS.map((field) => [field, text(body, field)])) as ProfileValues;
    if (!csrfOk(ctx)) return render(ctx, values, problem(403, i18n.t('form.expired')));
    // Only what changed goes to the service, so the audit log names just that.
    const stored = valuesOf(user);
    const changes: Record<string, string> = Object.fromEntries(
      FIELDS.filter((field) => values[field] !== stored[field]).map((field) => [field, field === 'username' ? values[field].trim() : values[field]]),
    );
    // A new address needs proof that it is the person (the password, and a code with two-factor).
    if ('email' in changes) {
      changes['current_password'] = text(body, 'current_password');
      if (text(body, 'otp')) changes['otp'] = text(body, 'otp');
    }
    try {
      const updated = Object.keys(changes).length ? await deps.userService.update({ user, ip: ctx.ip }, user, changes, { replace: false }) : user;
      // A new address (again) was asked for: its verification link went out.
      const mailed = 'email' in changes && updated.pendingEmail !== null;
      doneRedirect(ctx, '/account/', mailed ? 'profile-saved-verify' : 'profile-saved');
    } catch (error) {
      render(ctx, values, problemOf(error, i18n));
    }
  });

  router.post('/account/email/resend', requireAccount, form, async (ctx) => {
    const { user } = accountOf(ctx);
    const i18n = i18nOf(ctx);
    if (!csrfOk(ctx)) return render(ctx, valuesOf(user), problem(403, i18n.t('form.expired')));
    const result = await deps.verification.resend(user, ctx.ip);
    if (result.ok) return doneRedirect(ctx, '/account/', 'verification-sent');
    if (result.reason === 'nothing_to_verify') return render(ctx, valuesOf(user), problem(400, i18n.t('profile.nothingToVerify')));
    const minutes = Math.max(1, Math.ceil(result.retryAfter / 60));
    const throttled = i18n.t(minutes === 1 ? 'profile.resendThrottled.one' : 'profile.resendThrottled.other', { minutes });
    render(ctx, valuesOf(user), { ...problem(429, throttled), retryAfter: result.retryAfter });
  });
}
