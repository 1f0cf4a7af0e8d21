import unhomoglyph from 'unhomoglyph';

/**
 * How a username and an email address are compared, computed here (never by SQL `lower()`,
 * which folds only ASCII on SQLite and follows the collation on PostgreSQL) and stored, so
 * the unique indexes mean the same on both databases.
 *
 * The users table stores these values (migration 20261207002000_username_keys): a change to
 * any function here needs a migration that recomputes them, or old rows stop matching.
 */

/** The form a username is stored and shown in: NFKC, as Django's `normalize_username`. */
export function normalizeUsername(username: string): string {
  return username.normalize('NFKC');
}

/**
 * The one identity behind a username: NFKC with full Unicode case folding (NFKC_Casefold, as
 * far as JavaScript has it: upper then lower case folds "ß" to "ss" and final sigma to sigma,
 * which `toLowerCase` alone does not), so "Ärger", "ärger" and "ÄRGER" are one name.
 */
export function usernameKey(username: string): string {
  return username.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC');
}

/**
 * The look of a username: the Unicode TR39 skeleton (NFD, every character replaced by its
 * prototype from the Unicode confusables data, NFD again) of its key, lower-cased since the
 * key is. Cyrillic "rооt" and Latin "root" have one skeleton, so do "paypa1" and "paypal":
 * two accounts whose names only a careful reader tells apart are refused.
 */
export function usernameSkeleton(username: string): string {
  return unhomoglyph(usernameKey(username).normalize('NFD')).normalize('NFD').toLowerCase();
}

/** Emails compare case-insensitively (and in NFKC); they are stored in that form. */
export function normalizeEmail(email: string | null | undefined): string | null {
  const trimmed = email?.normalize('NFKC').trim();
  return trimmed ? trimmed.toLowerCase() : null;
}
