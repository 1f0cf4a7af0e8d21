import type { AuditLog } from '../audit/audit-log.js';
import type { BackgroundJobs } from '../mail/background.js';
import type { Mailer } from '../mail/mailer.js';
import { verificationMessage } from '../mail/messages.js';
import type { User, UserRepository } from '../repositories/users.js';
import { EMAIL_TOKEN_LIFETIME_MS, type EmailTokens } from './email-tokens.js';

export interface EmailVerificationDeps {
  users: UserRepository;
  tokens: EmailTokens;
  mailer: Mailer;
  jobs: BackgroundJobs;
  audit: AuditLog;
  publicUrl: string;
}

export type VerifyOutcome = 'verified' | 'invalid' | 'address_changed';

/**
 * Email verification: a link with a single-use token (24 hours) to the address being
 * verified. Opening the link only shows a button; pressing it (a POST) uses the token, since
 * mail scanners fetch the links in a message. The address is marked verified only while it
 * is still the account's address.
 */
export function createEmailVerification({ users, tokens, mailer, jobs, audit, publicUrl }: EmailVerificationDeps) {
  const site = new URL(publicUrl).host;

  async function send(user: User, reason: 'registered' | 'email_changed'): Promise<void> {
    if (!user.email) return;
    const token = await tokens.issue(user.id, 'verify_email', user.email);
    const link = `${publicUrl}/account/verify-email?token=${token}`;
    const hours = EMAIL_TOKEN_LIFETIME_MS.verify_email / 3_600_000;
    await mailer.send(verificationMessage({ to: user.email, username: user.username, link, hours, site }));
    await audit.record('email.verification_sent', { actor: 'system', targetType: 'user', targetId: user.id, details: { reason } });
  }

  return {
    /** Mails a verification link after the response (a slow mail server must not slow registration). */
    sendLater(user: User, reason: 'registered' | 'email_changed'): void {
      jobs.run('sending the verification mail', () => send(user, reason));
    },

    /** The address a still-usable link is for, without using it. */
    async addressOf(token: unknown): Promise<string | undefined> {
      return (await tokens.peek(token, 'verify_email'))?.email;
    },

    /** Uses the token and marks the address verified if it is still the account's. */
    async verify(token: unknown, ip: string): Promise<VerifyOutcome> {
      const grant = await tokens.consume(token, 'verify_email');
      if (!grant) {
        await audit.record('email.verification_refused', { actor: 'anonymous', ip, details: { reason: 'invalid_used_or_expired' } });
        return 'invalid';
      }
      const who = { actor: 'anonymous', ip, targetType: 'user', targetId: grant.userId };
      if (!(await users.markEmailVerified(grant.userId, grant.email))) {
        await audit.record('email.verification_refused', { ...who, details: { reason: 'address_changed' } });
        return 'address_changed';
      }
      await audit.record('email.verified', who);
      return 'verified';
    },
  };
}

export type EmailVerification = ReturnType<typeof createEmailVerification>;
