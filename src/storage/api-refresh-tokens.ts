import type { Knex } from 'knex';
import { fastQuery } from './fast-query.js';
import { affectedRows } from './knex.js';

/** One refresh token of the REST API: single-use, in a family descended from one login. */
export interface ApiRefreshTokenRow {
  jti: string;
  userId: number;
  familyId: string;
  createdAt: number;
  expiresAt: number;
}

/** Stores a new refresh token (unused). */
export type InsertRefreshToken = (row: ApiRefreshTokenRow) => Promise<void>;

/** What claiming a refresh token found: gone (revoked), used before (its family deleted), or claimed now. */
export type RefreshClaim<T> = { kind: 'revoked' } | { kind: 'reused' } | { kind: 'claimed'; value: T };

const INSERT = 'insert into api_refresh_tokens (jti, user_id, family_id, created_at, expires_at, used_at) values (?, ?, ?, ?, ?, null)';

async function insertWith(db: Knex | Knex.Transaction, row: ApiRefreshTokenRow): Promise<void> {
  await db('api_refresh_tokens').insert({ jti: row.jti, user_id: row.userId, family_id: row.familyId, created_at: row.createdAt, expires_at: row.expiresAt, used_at: null });
}

/** SQL for `api_refresh_tokens`. */
export function createApiRefreshTokenRepository(knex: Knex) {
  return {
    /** Outside a transaction (every login): a prepared statement. */
    async insert(row: ApiRefreshTokenRow): Promise<void> {
      await fastQuery(knex, INSERT, [row.jti, row.userId, row.familyId, row.createdAt, row.expiresAt], 'run');
    },

    /**
     * Claims `jti` and runs `child` in ONE transaction: the claiming UPDATE (only where
     * `used_at is null`) row-locks the token (PostgreSQL) or takes the write lock (SQLite), so a
     * concurrent reuse waits until the winner's child row is committed and its family DELETE
     * then removes that child too. A token used before has its whole family deleted.
     * `child` gets the family and an insert on the transaction's connection; it must not query
     * through `knex` (SQLite has a single connection: it would deadlock).
     */
    claim<T>(jti: string, child: (familyId: string, insert: InsertRefreshToken) => Promise<T>): Promise<RefreshClaim<T>> {
      return knex.transaction(async (trx): Promise<RefreshClaim<T>> => {
        const row = (await trx('api_refresh_tokens').where({ jti }).first()) as { family_id: string } | undefined;
        if (!row) return { kind: 'revoked' };
        const won = affectedRows(await trx('api_refresh_tokens').where({ jti }).whereNull('used_at').update({ used_at: Date.now() }));
        if (won !== 1) {
          await trx('api_refresh_tokens').where({ family_id: row.family_id }).delete();
          return { kind: 'reused' };
        }
        return { kind: 'claimed', value: await child(row.family_id, (next) => insertWith(trx, next)) };
      });
    },

    /** Whether a refresh token is stored and unused, used (under rotation), or gone (revoked, swept). */
    async stateOf(jti: string): Promise<'live' | 'used' | 'gone'> {
      const row = (await knex('api_refresh_tokens').select('used_at').where({ jti }).first()) as { used_at: number | null } | undefined;
      if (!row) return 'gone';
      return row.used_at === null ? 'live' : 'used';
    },

    /** Deletes the family `jti` belongs to (every token descended from its login). */
    async revokeFamilyOf(jti: string): Promise<void> {
      await knex('api_refresh_tokens')
        .whereIn('family_id', knex('api_refresh_tokens').select('family_id').where({ jti }))
        .delete();
    },

    /** Deletes every refresh token of a user. */
    async revokeUser(userId: number): Promise<void> {
      await knex('api_refresh_tokens').where({ user_id: userId }).delete();
    },

    /** Deletes expired tokens, used or not; returns how many went. */
    async sweepExpired(now = Date.now()): Promise<number> {
      return knex('api_refresh_tokens').where('expires_at', '<=', now).delete();
    },
  };
}

export type ApiRefreshTokenRepository = ReturnType<typeof createApiRefreshTokenRepository>;
