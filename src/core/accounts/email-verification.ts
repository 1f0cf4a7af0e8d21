import type { AuditLog } from '../audit/audit-log.js';
import type { BackgroundJobs } from '../mail/background.js';
import type { Mailer } from '../mail/mailer.js';
import { emailChangeNotice, verificationMessage } from '../mail/messages.js';
import type { User, UserRepository } from '../../storage/users.js';
import { EMAIL_TOKEN_LIFETIME_MS, type EmailTokens } from './email-tokens.js';
import type { LoginThrottle } from './login-throttle.js';
import { TooManyAttempts } from '../errors.js';
import type { EmailChanges } from './user-service.js';

/** What a service that mails single-use links needs (verification, password reset). */
export interface MailedLinkDeps {
  users: UserRepository;
  tokens: EmailTokens;
  mailer: Mailer;
  jobs: BackgroundJobs;
  audit: AuditLog;
  /**
   * Limits how often links are asked for (counters share the login throttle's table). A
   * plain request counter: every request counts, nothing is checked that could fail.
   */
  throttle: Pick<LoginThrottle, 'count'>;
  publicUrl: string;
}

export type EmailVerificationDeps = MailedLinkDeps;

export type VerifyOutcome = 'verified' | 'invalid' | 'address_changed' | 'address_taken';

/** Why a verification mail goes out. */
export type VerificationReason = 'registered' | 'email_changed' | 'requested';

export type ResendResult = { ok: true } | { ok: false; reason: 'nothing_to_verify' } | { ok: false; reason: 'throttled'; retryAfter: number };

/** The address a verification mail goes to: the pending one when a change waits, else the account's own if unverified. */
const addressToVerify = (user: User): string | null => user.pendingEmail ?? (user.email && !user.emailVerified ? user.email : null);

/**
 * Email verification: a link with a single-use token (24 hours) to the address being
 * verified. Opening the link only shows a button; pressing it (a POST) uses the token, since
 * mail scanners fetch the links in a message. The address is marked verified only while it
 * is still the account's address or the pending one (which then becomes the account's).
 */
export function createEmailVerification({ users, tokens, mailer, jobs, audit, throttle, publicUrl }: EmailVerificationDeps) {
  const site = new URL(publicUrl).host;

  async function send(user: User, reason: VerificationReason): Promise<void> {
    const to = addressToVerify(user);
    if (!to) return;
    const token = await tokens.issue(user.id, 'verify_email', to);
    const link = `${publicUrl}/account/verify-email?token=${token}`;
    const hours = EMAIL_TOKEN_LIFETIME_MS.verify_email / 3_600_000;
    await mailer.send(verificationMessage({ to, username: user.username, link, hours, site }));
    await audit.record('email.verification_sent', { actor: 'system', targetType: 'user', targetId: user.id, details: { reason } });
  }

  /** Mails a verification link after the response (a slow mail server must not slow registration). */
  function sendLater(user: User, reason: VerificationReason): void {
    jobs.run('sending the verification mail', () => send(user, reason));
  }

  /**
   * A person's own change of address (see {@link EmailChanges}): at most the reset limit of
   * requests per account and per new address within the throttle window, so a stolen
   * session cannot mail any third party at will.
   */
  const emailChanges: EmailChanges = {
    async allow(user, address, ip) {
      const { retryAfter } = await throttle.count([
        ['account', `email-change-user:${user.id}`],
        ['account', `email-change-to:${address}`],
      ]);
      if (retryAfter > 0) {
        await audit.record('email.change_throttled', { actor: user.username, actorUserId: user.id, ...(ip ? { ip } : {}), details: { retry_after: retryAfter } });
        throw new TooManyAttempts(retryAfter, 'too_many_email_changes');
      }
    },
    announce(user, previous) {
      if (user.pendingEmail) sendLater(user, 'email_changed');
      if (!previous) return;
      jobs.run('sending the email change notice', async () => {
        await mailer.send(emailChangeNotice({ to: previous, username: user.username, newAddress: user.pendingEmail, site, link: `${publicUrl}/account/` }));
        await audit.record('email.change_notice_sent', { actor: 'system', targetType: 'user', targetId: user.id });
      });
    },
  };

  return {
    sendLater,
    emailChanges,

    /**
     * A new link for a signed-in person whose address is not verified yet (the first mail
     * may be lost or expired), counted per account and per client IP so nobody can use it
     * to flood a mailbox.
     */
    async resend(user: User, ip: string): Promise<ResendResult> {
      if (!addressToVerify(user)) return { ok: false, reason: 'nothing_to_verify' };
      const { retryAfter } = await throttle.count([
        // Prefixed so these counters never meet the login or reset ones.
        ['account', `verify-user:${user.id}`],
        ['ip', `verify-ip:${ip}`],
      ]);
      if (retryAfter > 0) {
        await audit.record('email.verification_throttled', { actor: user.username, actorUserId: user.id, ip, details: { retry_after: retryAfter } });
        return { ok: false, reason: 'throttled', retryAfter };
      }
      sendLater(user, 'requested');
      return { ok: true };
    },

    /** The address a still-usable link is for, without using it. */
    async addressOf(token: unknown): Promise<string | undefined> {
      return (await tokens.peek(token, 'verify_email'))?.email;
    },

    /** Uses the token and marks the address verified if it is still the account's, or makes the pending one the account's. */
    async verify(token: unknown, ip: string): Promise<VerifyOutcome> {
      const grant = await tokens.consume(token, 'verify_email');
      if (!grant) {
        await audit.record('email.verification_refused', { actor: 'anonymous', ip, details: { reason: 'invalid_used_or_expired' } });
        return 'invalid';
      }
      const who = { actor: 'anonymous', ip, targetType: 'user', targetId: grant.userId };
      const confirmed = await users.confirmEmail(grant.userId, grant.email);
      if (confirmed !== 'confirmed') {
        const reason = confirmed === 'taken' ? 'address_taken' : 'address_changed';
        await audit.record('email.verification_refused', { ...who, details: { reason } });
        return reason;
      }
      await audit.record('email.verified', who);
      return 'verified';
    },
  };
}

export type EmailVerification = ReturnType<typeof createEmailVerification>;
