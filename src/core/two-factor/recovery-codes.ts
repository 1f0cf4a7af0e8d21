import { createHash, randomInt } from 'node:crypto';

/** How many recovery codes a user gets at once. */
export const RECOVERY_CODE_COUNT = 10;

// Lower-case base32 without the look-alikes 0/o and 1/l/i: easy to copy from paper.
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
const LENGTH = 20;
const GROUP = 5;

/**
 * Recovery codes: 20 characters from a 31-letter alphabet (99 random bits each), written in
 * groups of five ("abcde-fghjk-mnpqr-stuvw"). With that much entropy an unsalted SHA-256 is
 * safe to store: no dictionary or brute force reaches them.
 */
export function newRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  return Array.from({ length: count }, () => {
    const chars = Array.from({ length: LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
    return chars.match(new RegExp(`.{${GROUP}}`, 'g'))!.join('-');
  });
}

/**
 * The code as typed, reduced to what is compared: case, spaces and dashes do not matter.
 * Undefined when it cannot be a recovery code at all.
 */
export function normalizeRecoveryCode(input: string): string | undefined {
  const compact = input.toLowerCase().replace(/[\s-]/g, '');
  return compact.length === LENGTH && [...compact].every((c) => ALPHABET.includes(c)) ? compact : undefined;
}

/** Hex SHA-256 of a normalised code: the only form stored. */
export function hashRecoveryCode(normalized: string): string {
  return createHash('sha256').update(normalized).digest('hex');
}
