import type { Knex } from 'knex';
import { withAppLock } from './app-lock.js';

/** A row of `signing_keys`: the private JWK as JSON text. */
export interface SigningKeyRow {
  kid: string;
  alg: string;
  status: 'current' | 'previous';
  private_jwk: string;
  created_at: number;
  retired_at: number | null;
  expires_at: number | null;
}

/** What may be done to `signing_keys` and `cookie_keys`, on the pool or inside the keys lock. */
function keyStatements(db: Knex | Knex.Transaction) {
  return {
    /** Algorithms that have a current signing key. */
    async currentAlgorithms(): Promise<string[]> {
      return (await db('signing_keys').where({ status: 'current' }).pluck('alg')) as string[];
    },

    /** Kids of the current signing keys. */
    async currentKids(): Promise<string[]> {
      return (await db('signing_keys').where({ status: 'current' }).pluck('kid')) as string[];
    },

    async hasCookieKey(): Promise<boolean> {
      return (await db('cookie_keys').first('id')) !== undefined;
    },

    /** Adds a current signing key. */
    async insertSigningKey(key: { kid: string; alg: string; privateJwk: string }, now: number): Promise<void> {
      await db('signing_keys').insert({
        kid: key.kid,
        alg: key.alg,
        status: 'current',
        private_jwk: key.privateJwk,
        created_at: now,
        retired_at: null,
        expires_at: null,
      });
    },

    /** Makes every current signing key previous, published until `expiresAt`. */
    async retireCurrent(now: number, expiresAt: number): Promise<void> {
      await db('signing_keys').where({ status: 'current' }).update({ status: 'previous', retired_at: now, expires_at: expiresAt });
    },

    /** Adds a cookie secret and deletes all but the newest `kept`. */
    async insertCookieKey(secret: string, now: number, kept: number): Promise<void> {
      await db('cookie_keys').insert({ secret, created_at: now });
      const keep = await db('cookie_keys').orderBy('id', 'desc').limit(kept).pluck('id');
      await db('cookie_keys').whereNotIn('id', keep).delete();
    },
  };
}

export type LockedKeyStatements = ReturnType<typeof keyStatements>;

/** SQL for `signing_keys` and `cookie_keys`. */
export function createKeyRepository(knex: Knex) {
  return {
    ...keyStatements(knex),

    /**
     * Runs `fn` under the `keys` app lock (one process at a time, in one transaction), with
     * statements on the lock's transaction. Keep `fn` short: generate keys before.
     */
    withLock<T>(fn: (locked: LockedKeyStatements) => Promise<T>): Promise<T> {
      return withAppLock(knex, 'keys', (trx) => fn(keyStatements(trx)));
    },

    /** Current keys first, then previous keys still published at `now`; newest first, then by kid. */
    async publishedSigningKeys(now: number): Promise<SigningKeyRow[]> {
      return (await knex('signing_keys')
        .where((q) => q.where({ status: 'current' }).orWhere('expires_at', '>', now))
        .orderByRaw("case when status = 'current' then 0 else 1 end")
        .orderBy('created_at', 'desc')
        .orderBy('kid')) as SigningKeyRow[];
    },

    /** Cookie secrets, newest first. */
    async cookieSecrets(): Promise<string[]> {
      return (await knex('cookie_keys').orderBy('id', 'desc').pluck('secret')) as string[];
    },

    /** Every signing key, newest first, then by kid. */
    async listSigningKeys(): Promise<SigningKeyRow[]> {
      return (await knex('signing_keys').orderBy('created_at', 'desc').orderBy('kid')) as SigningKeyRow[];
    },

    /** Deletes previous keys whose publication ended at or before `now`. */
    async deleteExpired(now: number): Promise<number> {
      return knex('signing_keys').where({ status: 'previous' }).andWhere('expires_at', '<=', now).delete();
    },
  };
}

export type KeyRepository = ReturnType<typeof createKeyRepository>;
