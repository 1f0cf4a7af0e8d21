import type { User } from '../../storage/users.js';
import type { AuditLog } from '../audit/audit-log.js';
import { TooManyAttempts } from '../errors.js';
import type { LoginThrottle } from './login-throttle.js';
import type { UserService } from './user-service.js';

/**
 * Sign-up on the browser page: a new account with an email address (the verification link
 * goes there, sent by the user service as for every self-registration), counted per client
 * IP like the other anonymous forms that send mail (password reset), so nobody can flood
 * mailboxes or the user table from one address.
 */
export function createRegistration({ userService, throttle, audit }: { userService: UserService; throttle: Pick<LoginThrottle, 'count'>; audit: AuditLog }) {
  return {
    async register(fields: { username: string; email: string; password: string }, ip: string): Promise<User> {
      // Checked before counting, so a typo in the form costs no slot.
      userService.validate(fields, ['username', 'email', 'password']);
      const { retryAfter } = await throttle.count([['ip', `signup-ip:${ip}`]]);
      if (retryAfter > 0) {
        await audit.record('user.signup_throttled', { actor: 'anonymous', ip, details: { retry_after: retryAfter } });
        throw new TooManyAttempts(retryAfter);
      }
      return userService.create({ user: null, ip }, fields, { requireEmail: true });
    },
  };
}

export type Registration = ReturnType<typeof createRegistration>;
