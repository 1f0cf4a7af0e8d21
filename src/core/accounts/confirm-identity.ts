import { ApiError } from '../../errors.js';
import type { User } from '../../storage/users.js';
import type { Authenticate } from './authenticate.js';
import { ValidationError } from './user-service.js';

/** A 429: the password (or code) was guessed wrong too often (the login throttle's lock). */
export class TooManyAttempts extends ApiError {
  readonly retryAfter: number;
  constructor(retryAfter: number, description = 'Too many failed attempts; try again later.') {
    super(429, 'too_many_requests', description);
    this.retryAfter = retryAfter;
  }
}

/** What a person presents to prove it is them before an account change. */
export interface Proof {
  password: unknown;
  /** The current TOTP code or a recovery code; needed when two-factor authentication is on. */
  otp?: unknown;
}

export interface ConfirmOptions {
  ip: string;
  /** Which change is being confirmed, for the audit log (e.g. `email_change`). */
  via: string;
  /** The form or JSON field the password came in, for the field error. */
  passwordField?: string;
  /** The field the second factor came in. */
  otpField?: string;
}

export const CURRENT_PASSWORD_WRONG = 'The current password is not correct.';
export const OTP_NEEDED = 'This account uses two-factor authentication: enter the current code of your authenticator app (or a recovery code).';
export const OTP_WRONG = 'The code is not valid. Use the current code of your authenticator app.';

/**
 * Proof of presence for account changes (email, password, two-factor, deletion): the
 * current password, and the second factor where one is enrolled. It goes through the one
 * authenticator, so it is throttled, locked and audited exactly like a login: a stolen
 * session or token cannot guess the password faster than the login page could.
 */
export function createIdentityConfirmation(authenticate: Authenticate) {
  return async function confirmIdentity(user: User, proof: Proof, options: ConfirmOptions): Promise<void> {
    const passwordField = options.passwordField ?? 'current_password';
    const otpField = options.otpField ?? 'otp';
    if (typeof proof.password !== 'string' || proof.password === '') {
      throw new ValidationError({ [passwordField]: ['This field is required.'] });
    }
    const checked = await authenticate(user.username, proof.password, { ip: options.ip, via: options.via, secondFactor: { otp: proof.otp }, reauthentication: true });
    if (checked.ok && checked.user.id === user.id) return;
    if (!checked.ok && checked.reason === 'locked') throw new TooManyAttempts(checked.retryAfter);
    if (!checked.ok && checked.reason === 'second_factor_required') throw new ValidationError({ [otpField]: [OTP_NEEDED] });
    if (!checked.ok && checked.reason === 'second_factor_invalid') throw new ValidationError({ [otpField]: [OTP_WRONG] });
    throw new ValidationError({ [passwordField]: [passwordField === 'current_password' ? CURRENT_PASSWORD_WRONG : 'The password is not correct.'] });
  };
}

export type ConfirmIdentity = ReturnType<typeof createIdentityConfirmation>;
