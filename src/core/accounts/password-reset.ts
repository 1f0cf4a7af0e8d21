import { passwordResetMessage } from '../mail/messages.js';
import { normalizeEmail, type User } from '../../storage/users.js';
import { EMAIL_TOKEN_LIFETIME_MS } from './email-tokens.js';
import type { MailedLinkDeps } from './email-verification.js';
import type { UserService } from './user-service.js';

/** Reset requests allowed per address and per client IP within the throttle window. */
export const RESET_REQUESTS_PER_ADDRESS = 3;
export const RESET_REQUESTS_PER_IP = 20;

/** An interaction uid as node-oidc-provider makes them; anything else is dropped. */
const INTERACTION_UID = /^[A-Za-z0-9_-]{1,64}$/;

/** The uid to lead back to the sign-in page, when it looks like one. */
export function interactionUid(value: unknown): string | undefined {
  return typeof value === 'string' && INTERACTION_UID.test(value) ? value : undefined;
}

/** `throttle` carries the reset limits. */
export interface PasswordResetDeps extends MailedLinkDeps {
  userService: UserService;
}

export type ResetRequestResult = { ok: true } | { ok: false; retryAfter: number };

/**
 * "Forgot your password?": a link with a single-use token (30 minutes) to the account's
 * address. Whether an address belongs to an account is never told: the request is counted
 * and answered the same way for any address, and the lookup and mail happen after the
 * answer. Setting the new password goes through the user service, which ends every session
 * and token of the user; the user's other reset links die with it.
 */
export function createPasswordReset({ users, userService, tokens, mailer, jobs, audit, throttle, publicUrl }: PasswordResetDeps) {
  const site = new URL(publicUrl).host;

  async function deliver(address: string, ip: string, uid: string | undefined): Promise<void> {
    const user = await users.findByEmail(address);
    // Recovery goes only to an address the person proved is theirs: an unverified one may be
    // anybody's (typed by whoever registered or edited the account).
    const refusal = !user?.email ? 'unknown_address' : !user.isActive ? 'inactive' : !user.emailVerified ? 'unverified_address' : null;
    if (!user?.email || refusal) {
      await audit.record('password_reset.requested', {
        actor: 'anonymous',
        ip,
        ...(user ? { targetType: 'user', targetId: user.id } : {}),
        details: { mail_sent: false, reason: refusal },
      });
      return;
    }
    const token = await tokens.issue(user.id, 'reset_password', user.email);
    // The uid only leads back to the sign-in page afterwards; it grants nothing by itself
    // (an interaction is bound to the browser that started it).
    const link = `${publicUrl}/account/password/reset?token=${token}${uid ? `&uid=${uid}` : ''}`;
    const minutes = EMAIL_TOKEN_LIFETIME_MS.reset_password / 60_000;
    await mailer.send(passwordResetMessage({ to: user.email, username: user.username, link, minutes, site }));
    await audit.record('password_reset.requested', { actor: 'anonymous', ip, targetType: 'user', targetId: user.id, details: { mail_sent: true } });
  }

  /** The account a grant may reset: still active and still at the (verified) address the link went to. */
  async function accountFor(grant: { userId: number; email: string } | undefined): Promise<User | undefined> {
    if (!grant) return undefined;
    const user = await users.findById(grant.userId);
    return user?.isActive && user.emailVerified && user.email === grant.email ? user : undefined;
  }

  return {
    /** Counts the request (per address and per IP) and, unless throttled, mails a link in the background. */
    async request(email: string, { ip, uid }: { ip: string; uid?: string | undefined }): Promise<ResetRequestResult> {
      const address = normalizeEmail(email) ?? '';
      const { retryAfter } = await throttle.count([
        // Prefixed so these counters never meet the login ones (`user:`, `login:`, bare IPs).
        ['account', `reset-email:${address}`],
        ['ip', `reset-ip:${ip}`],
      ]);
      if (retryAfter > 0) {
        await audit.record('password_reset.throttled', { actor: 'anonymous', ip, details: { retry_after: retryAfter } });
        return { ok: false, retryAfter };
      }
      jobs.run('handling a password reset request', () => deliver(address, ip, uid));
      return { ok: true };
    },

    /** The account a link would reset, without using the link (the GET page). */
    async accountOf(token: unknown): Promise<User | undefined> {
      return accountFor(await tokens.peek(token, 'reset_password'));
    },

    /**
     * Uses the link and sets the password (already checked against the policy by the caller,
     * so a refused password does not use up the link). Undefined when the link is unknown,
     * used, expired, or its account is gone, inactive or at another address now.
     */
    async complete(token: unknown, password: string, ip: string): Promise<User | undefined> {
      const user = await accountFor(await tokens.consume(token, 'reset_password'));
      if (!user) {
        await audit.record('password_reset.refused', { actor: 'anonymous', ip, details: { reason: 'invalid_used_or_expired' } });
        return undefined;
      }
      await userService.resetPassword({ user, ip }, user, password);
      await tokens.invalidate(user.id, 'reset_password');
      return user;
    },
  };
}

export type PasswordReset = ReturnType<typeof createPasswordReset>;
