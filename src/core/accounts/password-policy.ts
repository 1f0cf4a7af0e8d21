import { dictionary } from '@zxcvbn-ts/language-common';
import { fieldProblem, type FieldProblem } from '../errors.js';

/** NIST SP 800-63B length rules: at least 8 characters, long passphrases welcome. */
export const PASSWORD_MIN_LENGTH = 8;
/** Upper bound only to keep hashing requests small; far above the 64 NIST asks to allow. */
export const PASSWORD_MAX_LENGTH = 1024;

/**
 * The most common passwords (about 49,000, from zxcvbn's ranked list), compared ignoring case
 * and surrounding spaces as Django's CommonPasswordValidator does. No composition rules.
 */
const COMMON = new Set((dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));

/** Returns the problem with the password, or undefined when it is acceptable. */
export function passwordProblem(password: string): FieldProblem | undefined {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) return fieldProblem('password_too_short', { min: PASSWORD_MIN_LENGTH });
  if (length > PASSWORD_MAX_LENGTH) return fieldProblem('password_too_long', { max: PASSWORD_MAX_LENGTH });
  if (COMMON.has(password.trim().toLowerCase())) return fieldProblem('password_too_common');
  return undefined;
}
