import { OTP_NEEDED, TooManyAttempts } from '../../core/accounts/confirm-identity.js';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../core/accounts/password-policy.js';
import { ValidationError } from '../../core/accounts/user-service.js';
import { ApiError } from '../../errors.js';
import type { MessageKey, MessageVars, Translator } from '../../locales/i18n.js';
import { tooManyAttempts } from '../interaction/routes.js';

/**
 * The services speak English (the REST API's messages are part of its contract); the
 * account pages show the same messages in the page's language. Each message the services
 * can give about a field the pages show has its catalog entry here; anything else is shown
 * as it is.
 */
const SERVICE_MESSAGES = new Map<string, [MessageKey, MessageVars?]>([
  ['This field is required.', ['problem.required']],
  ['Username is required.', ['problem.usernameRequired']],
  ['Username must be at most 150 characters.', ['problem.usernameLength']],
  ['Username may contain only letters, digits and @ . + - _ characters.', ['problem.usernameCharacters']],
  ['A user with that username already exists.', ['problem.usernameTaken']],
  ['Email must be at most 254 characters.', ['problem.emailLength']],
  ['Enter a valid email address.', ['problem.emailInvalid']],
  ['A user with that email already exists.', ['problem.emailTaken']],
  ['Must be at most 150 characters.', ['problem.nameLength']],
  [`Password must be at least ${PASSWORD_MIN_LENGTH} characters.`, ['problem.passwordShort', { min: PASSWORD_MIN_LENGTH }]],
  [`Password must be at most ${PASSWORD_MAX_LENGTH} characters.`, ['problem.passwordLong', { max: PASSWORD_MAX_LENGTH }]],
  ['This password is too common; choose one that is harder to guess.', ['problem.passwordCommon']],
  ['The new password must differ from the current one.', ['problem.passwordSame']],
  ['The current password is not correct.', ['problem.currentPassword']],
  ['The password is not correct.', ['problem.password']],
  ['Type your username exactly as shown.', ['problem.confirmUsername']],
  ['No such connected application.', ['apps.notFound']],
  ['No such session.', ['sessions.notFound']],
  ['The code is not valid. Use the current code of your authenticator app.', ['problem.code']],
  [OTP_NEEDED, ['problem.otpNeeded']],
]);

/** A service message in the page's language (as it is when the catalog has no entry for it). */
export function translateProblem(message: string, i18n: Translator): string {
  const known = SERVICE_MESSAGES.get(message);
  return known ? i18n.t(...known) : message;
}

/** How a refused action is shown on the form that sent it. */
export interface Problem {
  status: number;
  message: string;
  fields: Record<string, string[]>;
  /** Seconds to wait, for a Retry-After header. */
  retryAfter?: number;
}

export const problem = (status: number, message: string, fields: Record<string, string[]> = {}): Problem => ({ status, message, fields });

/** Maps the services' refusals to a status and translated messages; anything else is not ours to show. */
export function problemOf(error: unknown, i18n: Translator): Problem {
  if (error instanceof TooManyAttempts) {
    return { ...problem(429, tooManyAttempts(error.retryAfter, i18n)), retryAfter: error.retryAfter };
  }
  if (error instanceof ValidationError) {
    const fields = Object.fromEntries(Object.entries(error.fields).map(([key, messages]) => [key, messages.map((m) => translateProblem(m, i18n))]));
    return problem(400, i18n.t('account.fields'), fields);
  }
  if (error instanceof ApiError && error.status < 500) return problem(error.status, translateProblem(error.message, i18n));
  throw error;
}
