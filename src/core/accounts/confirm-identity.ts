import type { User } from '../../storage/users.js';
import { InvalidInput, TooManyAttempts } from '../errors.js';
import type { Authenticate } from './authenticate.js';

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
      throw InvalidInput.of(passwordField, 'required');
    }
    const checked = await authenticate(user.username, proof.password, { ip: options.ip, via: options.via, secondFactor: { otp: proof.otp }, reauthentication: true });
    if (checked.ok && checked.user.id === user.id) return;
    if (!checked.ok && checked.reason === 'locked') throw new TooManyAttempts(checked.retryAfter);
    if (!checked.ok && checked.reason === 'second_factor_required') throw InvalidInput.of(otpField, 'otp_needed');
    if (!checked.ok && checked.reason === 'second_factor_invalid') throw InvalidInput.of(otpField, 'otp_wrong');
    throw InvalidInput.of(passwordField, passwordField === 'current_password' ? 'current_password_wrong' : 'password_wrong');
  };
}

export type ConfirmIdentity = ReturnType<typeof createIdentityConfirmation>;
