import type { Context } from 'koa';
import type { Enrollment, TwoFactorService } from '../../core/two-factor/settings.js';
import { csrfOk, formOf, text } from '../http/forms.js';
import { accountOf, doneRedirect, i18nOf, TWO_FACTOR_PATH, type AccountKit } from './kit.js';
import { problem, problemOf, type Problem } from './problems.js';

/** The QR code as an image the CSP allows (img-src data:), instead of inline SVG markup. */
const qrImage = (enrollment: Enrollment) => `data:image/svg+xml;base64,${Buffer.from(enrollment.qr_svg).toString('base64')}`;

/**
 * Two-factor authentication in the account center, on the two-factor service: set up an
 * authenticator app (QR code made on the server, the key for typing), confirm with a code to
 * turn it on and see the recovery codes once, make new recovery codes, turn it off with the
 * password and a code. Every code check is throttled by the service like a login.
 */
export function addTwoFactorPages({ router, page, requireAccount, form }: AccountKit, twoFactor: TwoFactorService): void {
  /** The page for the account's current state; `shown` adds what one response shows once. */
  async function render(ctx: Context, shown: { recoveryCodes?: string[]; enrollment?: Enrollment } = {}, failure?: Problem, failedForm?: string): Promise<void> {
    const { user } = accountOf(ctx);
    const status = await twoFactor.status(user);
    const enrollment = shown.enrollment ?? (status.pending ? await twoFactor.pendingEnrollment(user) : undefined);
    page(
      ctx,
      'twoFactor',
      'two-factor',
      {
        title: i18nOf(ctx).t('account.nav.twoFactor'),
        status,
        enrollment: enrollment ? { secret: enrollment.secret, qr: qrImage(enrollment) } : null,
        recoveryCodes: shown.recoveryCodes ?? null,
        path: TWO_FACTOR_PATH,
        // Two forms of one state ask for a password and a code: the errors go to the one sent.
        failedForm: failedForm ?? null,
      },
      failure,
    );
  }

  /** A POST of this group: CSRF first, then `act`; the service's refusals re-render the page. */
  function action(path: string, act: (ctx: Context, body: Record<string, unknown>) => Promise<void>) {
    router.post(`${TWO_FACTOR_PATH}${path}`, requireAccount, form, async (ctx) => {
      const i18n = i18nOf(ctx);
      if (!csrfOk(ctx)) return render(ctx, {}, problem(403, i18n.t('form.expired')));
      try {
        await act(ctx, formOf(ctx));
      } catch (error) {
        await render(ctx, {}, problemOf(error, i18n), path);
      }
    });
  }

  router.get(TWO_FACTOR_PATH, requireAccount, (ctx) => render(ctx));

  // The password first: a stolen session must not put its own authenticator on the account.
  action('/setup', async (ctx, body) => {
    await render(ctx, { enrollment: await twoFactor.beginEnrollment(accountOf(ctx).user, { password: text(body, 'password') }, { ip: ctx.ip }) });
  });

  // The recovery codes are in this response only (no redirect: they must not be in a URL).
  action('/confirm', async (ctx, body) => {
    const { recovery_codes } = await twoFactor.confirmEnrollment(accountOf(ctx).user, text(body, 'code'), { ip: ctx.ip });
    await render(ctx, { recoveryCodes: recovery_codes });
  });

  action('/recovery-codes', async (ctx, body) => {
    const proof = { password: text(body, 'password'), code: text(body, 'code') };
    const { recovery_codes } = await twoFactor.regenerateRecoveryCodes(accountOf(ctx).user, proof, { ip: ctx.ip });
    await render(ctx, { recoveryCodes: recovery_codes });
  });

  // Both the password and a code (as the REST API): a stolen session alone cannot turn it off.
  action('/disable', async (ctx, body) => {
    await twoFactor.disable(accountOf(ctx).user, { password: text(body, 'password'), code: text(body, 'code') }, { ip: ctx.ip });
    doneRedirect(ctx, TWO_FACTOR_PATH, 'two-factor-off');
  });
}
