import Router from '@koa/router';
import type { Context } from 'koa';
import type { EmailVerification } from '../../core/accounts/email-verification.js';
import { interactionUid, type PasswordReset } from '../../core/accounts/password-reset.js';
import { passwordProblem } from '../../core/accounts/password-policy.js';
import { emailProblem } from '../../core/accounts/user-input.js';
import { csrfToken, csrfValid } from '../http/csrf.js';
import { formParser } from '../http/forms.js';
import type { Views } from '../http/views.js';

export interface EmailPagesDeps {
  verification: EmailVerification;
  passwordReset: PasswordReset;
  views: Views;
  secureCookies: boolean;
}

const FORM_EXPIRED = 'This form has expired. Please try again.';

/**
 * The pages behind the links in our mails, under /account/: email verification and the
 * "Forgot your password?" flow. Tokens travel in the query string of a GET (our request log
 * records paths only) and in a hidden field of the POST, never in a path. Every form has a
 * CSRF token; every page is no-store, since some show a live link's form.
 */
export function createEmailPagesRouter({ verification, passwordReset, views, secureCookies }: EmailPagesDeps): Router {
  const router = new Router({ prefix: '/account' });
  const form = formParser({ limit: '16kb' });

  function page(ctx: Context, status: number, view: string, data: Record<string, unknown>): void {
    ctx.status = status;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = views.render(`account/${view}`, { csrf: csrfToken(ctx, { secure: secureCookies }), ...data });
  }

  const fieldsOf = (ctx: Context) => (ctx.request.body ?? {}) as Record<string, unknown>;
  const text = (value: unknown) => (typeof value === 'string' ? value : '');

  // ---- email verification ----

  function linkInvalid(ctx: Context, title: string, problem: string): void {
    page(ctx, 400, 'message', { title, problem });
  }

  router.get('/verify-email', async (ctx) => {
    const token = ctx.query['token'];
    const email = await verification.addressOf(token);
    if (!email) return linkInvalid(ctx, 'Link not valid', 'This verification link is invalid, was already used, or has expired.');
    page(ctx, 200, 'verify-email', { title: 'Verify your email address', email, token });
  });

  router.post('/verify-email', form, async (ctx) => {
    const body = fieldsOf(ctx);
    const token = text(body['token']);
    if (!csrfValid(ctx, body['csrf'])) {
      const email = await verification.addressOf(token);
      if (!email) return linkInvalid(ctx, 'Link not valid', 'This verification link is invalid, was already used, or has expired.');
      return page(ctx, 403, 'verify-email', { title: 'Verify your email address', email, token, message: FORM_EXPIRED });
    }
    const outcome = await verification.verify(token, ctx.ip);
    if (outcome === 'invalid') return linkInvalid(ctx, 'Link not valid', 'This verification link is invalid, was already used, or has expired.');
    if (outcome === 'address_changed') {
      return linkInvalid(ctx, 'Link not valid', 'This link was sent to an address that is no longer the one on your account.');
    }
    if (outcome === 'address_taken') {
      return linkInvalid(ctx, 'Address already in use', 'Another account uses this email address now, so it cannot become yours. Choose another one in your account.');
    }
    page(ctx, 200, 'message', { title: 'Email address verified', lead: 'Thank you: your email address is now verified. You can close this window.' });
  });

  // ---- forgot / reset password ----

  function forgotForm(ctx: Context, status: number, data: { uid?: string | undefined; email?: string; message?: string }): void {
    page(ctx, status, 'forgot-password', { title: 'Forgot your password?', email: '', ...data });
  }

  router.get('/password/forgot', async (ctx) => {
    forgotForm(ctx, 200, { uid: interactionUid(ctx.query['uid']) });
  });

  router.post('/password/forgot', form, async (ctx) => {
    const body = fieldsOf(ctx);
    const uid = interactionUid(body['uid']);
    const email = text(body['email']).trim();
    if (!csrfValid(ctx, body['csrf'])) return forgotForm(ctx, 403, { uid, email, message: FORM_EXPIRED });
    const problem = email ? emailProblem(email)?.message : 'Enter the email address of your account.';
    if (problem) return forgotForm(ctx, 400, { uid, email, message: problem });

    const result = await passwordReset.request(email, { ip: ctx.ip, uid });
    if (!result.ok) {
      ctx.set('Retry-After', String(result.retryAfter));
      const minutes = Math.max(1, Math.ceil(result.retryAfter / 60));
      return forgotForm(ctx, 429, { uid, email, message: `Too many requests. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.` });
    }
    // The same page whether or not the address has an account; the address is not repeated,
    // so the page does not even differ by it.
    page(ctx, 200, 'message', {
      title: 'Check your email',
      lead: 'If an account has that address, we have sent it a link to choose a new password. The link works once, for 30 minutes.',
      ...(uid ? { link: { href: `/interaction/${uid}`, text: 'Back to sign in' } } : {}),
    });
  });

  function resetForm(ctx: Context, status: number, data: { token: string; uid?: string | undefined; username: string; message?: string }): void {
    page(ctx, status, 'reset-password', { title: 'Choose a new password', ...data });
  }

  function resetLinkInvalid(ctx: Context, uid: string | undefined): void {
    page(ctx, 400, 'message', {
      title: 'Link not valid',
      problem: 'This password reset link is invalid, was already used, or has expired.',
      link: { href: `/account/password/forgot${uid ? `?uid=${uid}` : ''}`, text: 'Ask for a new link' },
    });
  }

  router.get('/password/reset', async (ctx) => {
    const token = text(ctx.query['token']);
    const uid = interactionUid(ctx.query['uid']);
    const user = await passwordReset.accountOf(token);
    if (!user) return resetLinkInvalid(ctx, uid);
    resetForm(ctx, 200, { token, uid, username: user.username });
  });

  router.post('/password/reset', form, async (ctx) => {
    const body = fieldsOf(ctx);
    const token = text(body['token']);
    const uid = interactionUid(body['uid']);
    // Checked without using the link, so a refused password or an expired form costs nothing.
    const user = await passwordReset.accountOf(token);
    if (!user) return resetLinkInvalid(ctx, uid);
    const again = (status: number, message: string) => resetForm(ctx, status, { token, uid, username: user.username, message });
    if (!csrfValid(ctx, body['csrf'])) return again(403, FORM_EXPIRED);
    const password = text(body['password']);
    if (password !== text(body['confirm_password'])) return again(400, 'The two passwords do not match.');
    const problem = passwordProblem(password);
    if (problem) return again(400, problem.message);

    if (!(await passwordReset.complete(token, password, ctx.ip))) return resetLinkInvalid(ctx, uid);
    page(ctx, 200, 'message', {
      title: 'Password changed',
      lead: uid
        ? 'Your new password is set, and you were signed out everywhere. Sign in with it now.'
        : 'Your new password is set, and you were signed out everywhere. Sign in with it from the application you were using.',
      ...(uid ? { link: { href: `/interaction/${uid}`, text: 'Continue signing in' } } : {}),
    });
  });

  return router;
}
