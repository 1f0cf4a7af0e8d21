import type { Knex } from 'knex';

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
  dateJoined: number;
  lastLogin: number | null;
  updatedAt: number;
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
}

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
  date_joined: number;
  last_login: number | null;
  updated_at: number;
}

/** Raised when a username or email is already taken. */
export class DuplicateUserError extends Error {
  readonly field: 'username' | 'email';
  constructor(field: 'username' | 'email') {
    super(`a user with that ${field} already exists`);
    this.name = 'DuplicateUserError';
    this.field = field;
  }
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
    dateJoined: Number(row.date_joined),
    lastLogin: row.last_login === null ? null : Number(row.last_login),
    updatedAt: Number(row.updated_at),
  };
}

/** Emails compare case-insensitively; we store them lower-cased. */
export function normalizeEmail(email: string | null | undefined): string | null {
  const trimmed = email?.trim();
  return trimmed ? trimmed.toLowerCase() : null;
}

export type UserRepository = ReturnType<typeof createUserRepository>;

/** SQL for the users table; returns plain {@link User} objects. */
export function createUserRepository(knex: Knex) {
  const table = () => knex<UserRow>('users');

  async function assertFree(username: string, email: string | null): Promise<void> {
    const taken = await table()
      .whereRaw('lower(username) = ?', [username.toLowerCase()])
      .first('id');
    if (taken) throw new DuplicateUserError('username');
    if (email !== null && (await table().where({ email }).first('id'))) throw new DuplicateUserError('email');
  }

  return {
    async findById(id: number | string): Promise<User | undefined> {
      const numeric = typeof id === 'number' ? id : /^\d{1,15}$/.test(id) ? Number(id) : NaN;
      if (!Number.isSafeInteger(numeric)) return undefined;
      const row = await table().where({ id: numeric }).first();
      return row ? fromRow(row) : undefined;
    },

    /** Finds by username (case-insensitive) or, when the login contains "@", by email too. */
    async findByLogin(login: string): Promise<User | undefined> {
      const value = login.trim();
      if (!value) return undefined;
      const byName = await table().whereRaw('lower(username) = ?', [value.toLowerCase()]).first();
      if (byName) return fromRow(byName);
      if (!value.includes('@')) return undefined;
      const byEmail = await table().where({ email: normalizeEmail(value) }).first();
      return byEmail ? fromRow(byEmail) : undefined;
    },

    async create(input: NewUser): Promise<User> {
      const now = Date.now();
      const email = normalizeEmail(input.email);
      await assertFree(input.username, email);
      try {
        const [row] = await table()
          .insert({
            username: input.username,
            email,
            password_hash: input.passwordHash,
            first_name: input.firstName ?? '',
            last_name: input.lastName ?? '',
            is_active: input.isActive ?? true,
            is_staff: input.isStaff ?? false,
            is_superuser: input.isSuperuser ?? false,
            email_verified: input.emailVerified ?? false,
            date_joined: now,
            last_login: null,
            updated_at: now,
          })
          .returning('*');
        return fromRow(row as UserRow);
      } catch (error) {
        // A concurrent insert may win between the check and the insert: map the constraint.
        // Knex messages quote the whole INSERT (which names every column): go by the index name.
        const message = error instanceof Error ? error.message : '';
        const constraint = (error as { constraint?: string }).constraint ?? '';
        if (/unique/i.test(message)) {
          throw new DuplicateUserError(/users_email_unique|users\.email\b/.test(`${constraint} ${message}`) ? 'email' : 'username');
        }
        throw error;
      }
    },

    async recordLogin(id: number, at = Date.now()): Promise<void> {
      await table().where({ id }).update({ last_login: at });
    },

    async setPasswordHash(id: number, passwordHash: string): Promise<void> {
      await table().where({ id }).update({ password_hash: passwordHash, updated_at: Date.now() });
    },

    async setActive(id: number, isActive: boolean): Promise<void> {
      await table().where({ id }).update({ is_active: isActive, updated_at: Date.now() });
    },

    async count(): Promise<number> {
      const row = await table().count<{ n: number }[]>({ n: '*' }).first();
      return Number(row?.n ?? 0);
    },
  };
}
