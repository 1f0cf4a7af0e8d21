import { dictionary } from '@zxcvbn-ts/language-common';

/** NIST SP 800-63B length rules: at least 8 characters, long passphrases welcome. */
export const PASSWORD_MIN_LENGTH = 8;
/** Upper bound only to keep hashing requests small; far above the 64 NIST asks to allow. */
export const PASSWORD_MAX_LENGTH = 1024;

/**
 * The most common passwords (about 49,000, from zxcvbn's ranked list), compared ignoring case
 * and surrounding spaces as Django's CommonPasswordValidator does. No composition rules.
 */
const COMMON = new Set((dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));

/** Returns a readable problem with the password, or undefined when it is acceptable. */
export function passwordProblem(password: string): string | undefined {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) return `Password must be at least ${PASSWORD_MIN_LENGTH} characters.`;
  if (length > PASSWORD_MAX_LENGTH) return `Password must be at most ${PASSWORD_MAX_LENGTH} characters.`;
  if (COMMON.has(password.trim().toLowerCase())) return 'This password is too common; choose one that is harder to guess.';
  return undefined;
}
