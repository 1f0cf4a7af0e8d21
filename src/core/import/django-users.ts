import { createHash } from 'node:crypto';
import { inSavepoint } from '../../storage/transactions.js';
import type { Knex } from 'knex';
import { describeDjangoHash } from '../accounts/django-hashes.js';
import { emailProblem, usernameProblem } from '../accounts/user-input.js';
import { createImportLinkRepository } from '../../storage/django-import-links.js';
import type { DjangoUserRow } from '../../storage/django-source.js';
import { createUserRepository, DuplicateUserError, normalizeEmail, type User, type UserChanges } from '../../storage/users.js';
import type { ImportReport, SkipReason } from './import-report.js';

export interface UserImportOptions {
  /** Django's addresses count as verified (Django itself does not record it). */
  emailsVerified: boolean;
  /** Addresses django-allauth recorded as verified, by Django user id. */
  verifiedEmails: Map<string, Set<string>>;
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex');

/** Why a row cannot come across whatever is in Latchkey, or undefined. */
function rowProblem(row: DjangoUserRow, email: string | null): SkipReason | undefined {
  if (usernameProblem(row.username)) return 'invalid_username';
  if (email && emailProblem(email)) return 'invalid_email';
  return undefined;
}

/** The fields of `wanted` that differ from `user`. */
function changesFor(user: User, wanted: Required<Pick<UserChanges, 'username' | 'email' | 'firstName' | 'lastName' | 'isActive' | 'isStaff' | 'isSuperuser' | 'emailVerified' | 'dateJoined' | 'lastLogin'>>): UserChanges {
  const changes: UserChanges = {};
  if (wanted.username !== user.username) changes.username = wanted.username;
  if (wanted.email !== user.email) changes.email = wanted.email;
  if (wanted.firstName !== user.firstName) changes.firstName = wanted.firstName;
  if (wanted.lastName !== user.lastName) changes.lastName = wanted.lastName;
  if (wanted.isActive !== user.isActive) changes.isActive = wanted.isActive;
  if (wanted.isStaff !== user.isStaff) changes.isStaff = wanted.isStaff;
  if (wanted.isSuperuser !== user.isSuperuser) changes.isSuperuser = wanted.isSuperuser;
  if (wanted.emailVerified !== user.emailVerified) changes.emailVerified = wanted.emailVerified;
  if (wanted.dateJoined !== user.dateJoined) changes.dateJoined = wanted.dateJoined;
  if (wanted.lastLogin !== user.lastLogin) changes.lastLogin = wanted.lastLogin;
  return changes;
}

/**
 * Brings Django's users into Latchkey, one savepoint per row (a row that fails leaves the
 * others and the report intact), inside the caller's transaction `trx`.
 *
 * - The password column is copied as it is: Django's formats verify at login (see
 *   core/accounts/django-hashes.js) and the first good login replaces it with Latchkey's hash;
 *   `!…` stays unusable until a password reset.
 * - A second run finds what the first made (django_import_links) and updates it: profile and
 *   flags from Django, the later of the two last logins, and the password only while it is
 *   still the copy the last run made (never one set or upgraded in Latchkey since).
 * - A Latchkey account that did not come from Django is never touched: its username or
 *   address makes the Django row `username_taken` / `email_taken`.
 */
export async function importDjangoUsers(trx: Knex.Transaction, rows: DjangoUserRow[], options: UserImportOptions, report: ImportReport): Promise<void> {
  report.users.found = rows.length;
  const skip = (row: DjangoUserRow, reason: SkipReason) => {
    report.users.skipped += 1;
    report.skipped.push({ kind: 'user', source_id: row.id, name: row.username, reason });
  };

  for (const row of rows) {
    const email = normalizeEmail(row.email);
    const problem = rowProblem(row, email);
    if (problem) {
      skip(row, problem);
      continue;
    }
    try {
      const outcome = await inSavepoint(trx, async (savepoint) => importOne(savepoint, row, email, options));
      if (outcome !== 'created' && outcome !== 'updated' && outcome !== 'unchanged') {
        skip(row, outcome);
        continue;
      }
      report.users[outcome] += 1;
      const format = describeDjangoHash(row.password);
      report.passwords[format] = (report.passwords[format] ?? 0) + 1;
    } catch (error) {
      if (error instanceof DuplicateUserError) {
        skip(row, error.field === 'email' ? 'email_taken' : 'username_taken');
        continue;
      }
      report.errors.push({ kind: 'user', source_id: row.id, name: row.username, message: (error as Error).message.split('\n')[0] ?? '' });
    }
  }
}

async function importOne(
  knex: Knex,
  row: DjangoUserRow,
  email: string | null,
  options: UserImportOptions,
): Promise<'created' | 'updated' | 'unchanged' | SkipReason> {
  const users = createUserRepository(knex);
  const links = createImportLinkRepository(knex);
  const link = await links.find('user', row.id);
  const existing = link ? await users.findById(link.targetId) : undefined;
  if (link && !existing) return 'deleted_in_latchkey';

  const named = await users.findByLogin(row.username);
  if (named && named.username.toLowerCase() === row.username.toLowerCase() && named.id !== existing?.id) return 'username_taken';
  const addressed = email ? await users.findByEmail(email) : undefined;
  if (addressed && addressed.id !== existing?.id) return 'email_taken';

  const djangoVerified = !!email && (options.emailsVerified || (options.verifiedEmails.get(row.id)?.has(email) ?? false));
  if (!existing) {
    const user = await users.create({
      username: row.username,
      email,
      passwordHash: row.password,
      firstName: row.firstName,
      lastName: row.lastName,
      isActive: row.isActive,
      isStaff: row.isStaff,
      isSuperuser: row.isSuperuser,
      emailVerified: djangoVerified,
      dateJoined: row.dateJoined,
      lastLogin: row.lastLogin,
    });
    await links.save('user', row.id, { targetId: String(user.id), sourceDigest: digest(row.password) });
    return 'created';
  }

  const changes = changesFor(existing, {
    username: row.username,
    email,
    firstName: row.firstName,
    lastName: row.lastName,
    isActive: row.isActive,
    isStaff: row.isStaff,
    isSuperuser: row.isSuperuser,
    // An address verified in Latchkey stays so while it is the account's.
    emailVerified: djangoVerified || (email === existing.email && existing.emailVerified),
    dateJoined: row.dateJoined,
    lastLogin: Math.max(existing.lastLogin ?? 0, row.lastLogin ?? 0) || null,
  });
  const passwordUntouched = link?.sourceDigest === digest(existing.passwordHash);
  if (passwordUntouched && row.password !== existing.passwordHash) changes.passwordHash = row.password;
  if (Object.keys(changes).length === 0) return 'unchanged';
  await users.update(existing.id, changes);
  if (changes.passwordHash !== undefined) await links.save('user', row.id, { targetId: String(existing.id), sourceDigest: digest(row.password) });
  return 'updated';
}
