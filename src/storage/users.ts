import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { fastQuery } from './fast-query.js';
import { normalizeEmail, normalizeUsername, usernameKey, usernameSkeleton } from './identity-keys.js';

export { normalizeEmail } from './identity-keys.js';

/** A user row as the application sees it (booleans normalised, never the raw DB shape). */
export interface User {
  id: number;
  username: string;
  email: string | null;
  passwordHash: string;
  firstName: string;
  lastName: string;
  isActive: boolean;
  isStaff: boolean;
  isSuperuser: boolean;
  emailVerified: boolean;
  /** An address the person asked to change to, not verified yet (and not used for anything). */
  pendingEmail: string | null;
  dateJoined: number;
  lastLogin: number | null;
  updatedAt: number;
  /**
   * Replaced whenever the password hash is written or the account is deactivated; the REST
   * API's JWTs carry the stamp they were issued under and die when it changes. '' until then.
   */
  authStamp: string;
}

/** Columns a list may be ordered by (API names, which are also the column names). */
export const USER_ORDERING_FIELDS = ['id', 'username', 'email', 'first_name', 'last_name', 'date_joined', 'last_login'] as const;
export type UserOrderingField = (typeof USER_ORDERING_FIELDS)[number];

export interface UserListQuery {
  offset: number;
  limit: number;
  search?: string;
  ordering: Array<{ field: UserOrderingField; descending: boolean }>;
}

export interface NewUser {
  username: string;
  email: string | null;
  passwordHash: string;
  firstName?: string;
  lastName?: string;
  isActive?: boolean;
  isStaff?: boolean;
  isSuperuser?: boolean;
  emailVerified?: boolean;
  pendingEmail?: string | null;
  /** Epoch milliseconds; now unless an account comes from elsewhere (an import). */
  dateJoined?: number;
  lastLogin?: number | null;
}

/** Fields that may change after creation: any of those a new user has. */
export type UserChanges = Partial<NewUser>;

interface UserRow {
  id: number;
  username: string;
  email: string | null;
  password_hash: string;
  first_name: string;
  last_name: string;
  is_active: boolean | number;
  is_staff: boolean | number;
  is_superuser: boolean | number;
  email_verified: boolean | number;
  pending_email: string | null;
  date_joined: number;
  last_login: number | null;
  updated_at: number;
  auth_stamp: string;
  /** What usernames compare by (identity-keys.ts): unique. */
  username_key: string;
  /** What usernames look like (identity-keys.ts): unique, NULL for look-alikes older than the rule. */
  username_skeleton: string | null;
}

/**
 * Raised when a username or email is already taken; `lookalike` when the username is another
 * one's look-alike (same confusable skeleton) rather than the same name.
 */
export class DuplicateUserError extends Error {
  readonly field: 'username' | 'email';
  readonly lookalike: boolean;
  constructor(field: 'username' | 'email', { lookalike = false } = {}) {
    super(lookalike ? 'a user with a username that looks the same already exists' : `a user with that ${field} already exists`);
    this.name = 'DuplicateUserError';
    this.field = field;
    this.lookalike = lookalike;
  }
}

/** The stored columns of a username: the NFKC form, its comparison key and its skeleton. */
function usernameColumns(username: string): Pick<UserRow, 'username' | 'username_key' | 'username_skeleton'> {
  return { username: normalizeUsername(username), username_key: usernameKey(username), username_skeleton: usernameSkeleton(username) };
}

function fromRow(row: UserRow): User {
  return {
    id: Number(row.id),
    username: row.username,
    email: row.email,
    passwordHash: row.password_hash,
    firstName: row.first_name,
    lastName: row.last_name,
    isActive: Boolean(row.is_active),
    isStaff: Boolean(row.is_staff),
    isSuperuser: Boolean(row.is_superuser),
    emailVerified: Boolean(row.email_verified),
    pendingEmail: row.pending_email ?? null,
    dateJoined: Number(row.date_joined),
    lastLogin: row.last_login === null ? null : Number(row.last_login),
    updatedAt: Number(row.updated_at),
    authStamp: row.auth_stamp,
  };
}

/** A fresh {@link User.authStamp}: ends every API token issued under the previous one. */
const newAuthStamp = () => randomBytes(16).toString('base64url');

export type UserRepository = ReturnType<typeof createUserRepository>;

/** SQL for the users table; returns plain {@link User} objects. */
export function createUserRepository(knex: Knex) {
  const table = () => knex<UserRow>('users');

  /** Checks uniqueness up front for a clear error; the unique indexes settle races. */
  async function assertFree(username: string | undefined, email: string | null | undefined, exceptId?: number): Promise<void> {
    const others = () => (exceptId === undefined ? table() : table().whereNot({ id: exceptId }));
    if (username !== undefined) {
      const { username_key: key, username_skeleton: skeleton } = usernameColumns(username);
      if (await others().where({ username_key: key }).first('id')) throw new DuplicateUserError('username');
      if (await others().where({ username_skeleton: skeleton }).first('id')) throw new DuplicateUserError('username', { lookalike: true });
    }
    if (email && (await others().where({ email }).first('id'))) throw new DuplicateUserError('email');
  }

  /** A concurrent write may win between the check and ours: map the constraint it hit. */
  function mapUniqueViolation(error: unknown): never {
    // Knex messages quote the whole statement (which names every column): go by the index name.
    const message = error instanceof Error ? error.message : '';
    const constraint = (error as { constraint?: string }).constraint ?? '';
    if (/unique/i.test(message)) {
      const where = `${constraint} ${message}`;
      if (/users_email_unique|users\.email\b/.test(where)) throw new DuplicateUserError('email');
      throw new DuplicateUserError('username', { lookalike: /users_username_skeleton_unique|users\.username_skeleton\b/.test(where) });
    }
    throw error;
  }

  return {
    async findById(id: number | string): Promise<User | undefined> {
      const numeric = typeof id === 'number' ? id : /^\d{1,15}$/.test(id) ? Number(id) : NaN;
      if (!Number.isSafeInteger(numeric)) return undefined;
      const row = await fastQuery(knex, 'select * from users where id = ? limit 1', [numeric], 'first');
      return row ? fromRow(row as unknown as UserRow) : undefined;
    },

    /** Finds by username (by its key: case and NFKC-insensitive) or, when the login contains "@", by email too. */
    async findByLogin(login: string): Promise<User | undefined> {
      const value = login.trim();
      if (!value) return undefined;
      const byName = await fastQuery(knex, 'select * from users where username_key = ? limit 1', [usernameKey(value)], 'first');
      if (byName) return fromRow(byName as unknown as UserRow);
      if (!value.includes('@')) return undefined;
      const byEmail = await fastQuery(knex, 'select * from users where email = ? limit 1', [normalizeEmail(value)], 'first');
      return byEmail ? fromRow(byEmail as unknown as UserRow) : undefined;
    },

    /** Finds by email address only (case-insensitive): never by username. */
    async findByEmail(email: string): Promise<User | undefined> {
      const normalized = normalizeEmail(email);
      if (!normalized) return undefined;
      const row = await table().where({ email: normalized }).first();
      return row ? fromRow(row) : undefined;
    },

    async create(input: NewUser): Promise<User> {
      const now = Date.now();
      const email = normalizeEmail(input.email);
      await assertFree(input.username, email);
      try {
        const [row] = await table()
          .insert({
            ...usernameColumns(input.username),
            email,
            password_hash: input.passwordHash,
            first_name: input.firstName ?? '',
            last_name: input.lastName ?? '',
            is_active: input.isActive ?? true,
            is_staff: input.isStaff ?? false,
            is_superuser: input.isSuperuser ?? false,
            email_verified: input.emailVerified ?? false,
            date_joined: input.dateJoined ?? now,
            last_login: input.lastLogin ?? null,
            updated_at: now,
          })
          .returning('*');
        return fromRow(row as UserRow);
      } catch (error) {
        mapUniqueViolation(error);
      }
    },

    /** Applies changes; returns the updated user, or undefined when there is no such user. */
    async update(id: number, changes: UserChanges): Promise<User | undefined> {
      const email = changes.email === undefined ? undefined : normalizeEmail(changes.email);
      // A pending address must not be someone else's either (the index settles it at verification).
      const pending = changes.pendingEmail ? normalizeEmail(changes.pendingEmail) : undefined;
      await assertFree(changes.username, email ?? pending, id);
      const row: Partial<UserRow> = { updated_at: Date.now() };
      if (changes.username !== undefined) Object.assign(row, usernameColumns(changes.username));
      if (email !== undefined) row.email = email;
      if (changes.passwordHash !== undefined) row.password_hash = changes.passwordHash;
      if (changes.firstName !== undefined) row.first_name = changes.firstName;
      if (changes.lastName !== undefined) row.last_name = changes.lastName;
      if (changes.isActive !== undefined) row.is_active = changes.isActive;
      // Reactivation keeps the stamp deactivation set: tokens from before stay dead.
      if (changes.passwordHash !== undefined || changes.isActive === false) row.auth_stamp = newAuthStamp();
      if (changes.isStaff !== undefined) row.is_staff = changes.isStaff;
      if (changes.isSuperuser !== undefined) row.is_superuser = changes.isSuperuser;
      if (changes.emailVerified !== undefined) row.email_verified = changes.emailVerified;
      if (changes.pendingEmail !== undefined) row.pending_email = normalizeEmail(changes.pendingEmail);
      if (changes.dateJoined !== undefined) row.date_joined = changes.dateJoined;
      if (changes.lastLogin !== undefined) row.last_login = changes.lastLogin;
      try {
        await table().where({ id }).update(row);
      } catch (error) {
        mapUniqueViolation(error);
      }
      return this.findById(id);
    },

    async delete(id: number): Promise<boolean> {
      return (await table().where({ id }).delete()) > 0;
    },

    /** A page of users and the total matching the search (case-insensitive substring). */
    async list(query: UserListQuery): Promise<{ count: number; users: User[] }> {
      const filtered = () => {
        const q = table();
        const term = query.search?.trim();
        if (term) {
          const like = (value: string) => `%${value.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
          q.where((w) => {
            // The username and email by their stored keys (any script); names by SQL lower().
            w.orWhereRaw(`username_key like ? escape '\\'`, [like(usernameKey(term))]);
            w.orWhereRaw(`coalesce(email, '') like ? escape '\\'`, [like(normalizeEmail(term) ?? '')]);
            for (const column of ['first_name', 'last_name']) {
              w.orWhereRaw(`lower(${column}) like ? escape '\\'`, [like(term.toLowerCase())]);
            }
          });
        }
        return q;
      };
      const counted = await filtered().count<{ n: number }[]>({ n: '*' }).first();
      const page = filtered();
      for (const { field, descending } of query.ordering) page.orderBy(field, descending ? 'desc' : 'asc');
      page.orderBy('id', 'asc');
      const rows = (await page.offset(query.offset).limit(query.limit)) as UserRow[];
      return { count: Number(counted?.n ?? 0), users: rows.map(fromRow) };
    },

    async recordLogin(id: number, at = Date.now()): Promise<void> {
      await fastQuery(knex, 'update users set last_login = ? where id = ?', [at, id], 'run');
    },

    /**
     * Also replaces the auth stamp, even for a rehash at login (same password, new cost): the
     * repository cannot tell a rehash from a new password, and ending the user's API tokens
     * once per cost change is the safe side.
     */
    async setPasswordHash(id: number, passwordHash: string): Promise<void> {
      await table().where({ id }).update({ password_hash: passwordHash, auth_stamp: newAuthStamp(), updated_at: Date.now() });
    },

    /**
     * Makes a verified address the account's: the pending one it was sent to (which then
     * replaces the old address) or the current one. One statement, so an address changed in
     * the meantime is never marked. Says what happened; `taken` when someone else has the
     * address now (the unique index decides).
     */
    async confirmEmail(id: number, email: string): Promise<'confirmed' | 'not_current' | 'taken'> {
      const address = normalizeEmail(email);
      try {
        const updated = await table()
          .where({ id })
          .andWhere((q) => q.where({ pending_email: address }).orWhere({ email: address }))
          .update({
            email: address,
            email_verified: true,
            pending_email: knex.raw('case when pending_email = ? then null else pending_email end', [address]) as unknown as string,
            updated_at: Date.now(),
          });
        return updated > 0 ? 'confirmed' : 'not_current';
      } catch (error) {
        if (/unique/i.test(error instanceof Error ? error.message : '')) return 'taken';
        throw error;
      }
    },

    /** Deactivation replaces the auth stamp; reactivation keeps it, so old tokens stay dead. */
    async setActive(id: number, isActive: boolean): Promise<void> {
      await table()
        .where({ id })
        .update({ is_active: isActive, ...(isActive ? {} : { auth_stamp: newAuthStamp() }), updated_at: Date.now() });
    },

    async count(): Promise<number> {
      const row = await table().count<{ n: number }[]>({ n: '*' }).first();
      return Number(row?.n ?? 0);
    },

    /** How many active superusers there are besides `exceptId`. */
    async countOtherActiveSuperusers(exceptId: number): Promise<number> {
      const row = await table().where({ is_superuser: true, is_active: true }).whereNot({ id: exceptId }).count<{ n: number }[]>({ n: '*' }).first();
      return Number(row?.n ?? 0);
    },
  };
}
