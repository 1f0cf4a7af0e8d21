import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { withAppLock } from '../../storage/app-lock.js';

/** The signing algorithms Latchkey always has a current key for. */
export const SIGNING_ALGORITHMS = ['RS256', 'ES256'] as const;

export interface SigningKeyRecord {
  kid: string;
  alg: string;
  status: 'current' | 'previous';
  createdAt: number;
  retiredAt: number | null;
  expiresAt: number | null;
}

/** What the provider is built from: private JWKs (current first) and cookie secrets (newest first). */
export interface KeyMaterial {
  jwks: { keys: JWK[] };
  cookieKeys: string[];
  /** Changes whenever keys are added, retired or expire; cheap to compare. */
  version: string;
}

interface KeyRow {
  kid: string;
  alg: string;
  status: 'current' | 'previous';
  private_jwk: string;
  created_at: number;
  retired_at: number | null;
  expires_at: number | null;
}

const COOKIE_KEYS_KEPT = 3;

async function generateSigningKey(alg: string): Promise<{ kid: string; jwk: JWK }> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg.startsWith('RS') ? { modulusLength: 2048 } : {}) });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, jwk: { ...jwk, kid, alg, use: 'sig' } };
}

/** One new key per signing algorithm. */
async function generateKeySet(): Promise<Array<{ alg: string; kid: string; jwk: JWK }>> {
  return Promise.all(SIGNING_ALGORITHMS.map(async (alg) => ({ alg, ...(await generateSigningKey(alg)) })));
}

async function insertSigningKey(trx: Knex.Transaction, key: { alg: string; kid: string; jwk: JWK }, now: number): Promise<void> {
  await trx('signing_keys').insert({
    kid: key.kid,
    alg: key.alg,
    status: 'current',
    private_jwk: JSON.stringify(key.jwk),
    created_at: now,
    retired_at: null,
    expires_at: null,
  });
}

async function insertCookieKey(trx: Knex.Transaction, now: number): Promise<void> {
  await trx('cookie_keys').insert({ secret: randomBytes(32).toString('base64url'), created_at: now });
  const keep = await trx('cookie_keys').orderBy('id', 'desc').limit(COOKIE_KEYS_KEPT).pluck('id');
  await trx('cookie_keys').whereNotIn('id', keep).delete();
}

export type KeyStore = ReturnType<typeof createKeyStore>;

/** Signing and cookie keys kept in the database so every process shares them. */
export function createKeyStore(knex: Knex) {
  return {
    /**
     * Generates the first keys when there are none. Runs under a lock, so two processes
     * booting at once on one database end up with the same keys.
     */
    async ensureKeys(): Promise<void> {
      const have = async (db: Knex | Knex.Transaction) =>
        (await db('signing_keys').where({ status: 'current' }).pluck('alg')) as string[];
      const cookie = async (db: Knex | Knex.Transaction) => (await db('cookie_keys').first('id')) !== undefined;
      const existing = await have(knex);
      if (SIGNING_ALGORITHMS.every((alg) => existing.includes(alg)) && (await cookie(knex))) return;
      // Generate outside the lock (RSA takes a while); insert only what is still missing inside it.
      const generated = await generateKeySet();
      await withAppLock(knex, 'keys', async (trx) => {
        const now = Date.now();
        const current = await have(trx);
        for (const key of generated) {
          if (!current.includes(key.alg)) await insertSigningKey(trx, key, now);
        }
        if (!(await cookie(trx))) await insertCookieKey(trx, now);
      });
    },

    /** Current keys first (they sign), then previous keys still within their publication window. */
    async load(now = Date.now()): Promise<KeyMaterial> {
      const rows = (await knex('signing_keys')
        .where((q) => q.where({ status: 'current' }).orWhere('expires_at', '>', now))
        .orderByRaw("case when status = 'current' then 0 else 1 end")
        .orderBy('created_at', 'desc')
        .orderBy('kid')) as KeyRow[];
      const cookieKeys = (await knex('cookie_keys').orderBy('id', 'desc').pluck('secret')) as string[];
      const keys = rows.map((row) => {
        const jwk = JSON.parse(row.private_jwk) as JWK;
        // key_ops ["verify"] keeps a retired key published but out of the provider's signing choice.
        return row.status === 'current' ? jwk : { ...jwk, key_ops: ['verify'] };
      });
      const version = rows.map((r) => `${r.kid}:${r.status}`).join(',') + `|${cookieKeys.length}:${cookieKeys[0]?.slice(0, 8) ?? ''}`;
      return { jwks: { keys }, cookieKeys, version };
    },

    /** Cheap check used by running processes to notice a rotation made elsewhere. */
    async version(now = Date.now()): Promise<string> {
      return (await this.load(now)).version;
    },

    /**
     * Adds new current keys and retires the old ones; retired keys stay published for
     * `retainMs` so tokens they signed keep verifying. Cookie keys rotate too.
     */
    async rotate(retainMs: number): Promise<{ added: string[]; retired: string[] }> {
      const generated = await generateKeySet();
      return withAppLock(knex, 'keys', async (trx) => {
        const now = Date.now();
        const retired = (await trx('signing_keys').where({ status: 'current' }).pluck('kid')) as string[];
        await trx('signing_keys')
          .where({ status: 'current' })
          .update({ status: 'previous', retired_at: now, expires_at: now + retainMs });
        for (const key of generated) await insertSigningKey(trx, key, now);
        await insertCookieKey(trx, now);
        const added = (await trx('signing_keys').where({ status: 'current' }).pluck('kid')) as string[];
        return { added, retired };
      });
    },

    async list(): Promise<SigningKeyRecord[]> {
      const rows = (await knex('signing_keys').orderBy('created_at', 'desc').orderBy('kid')) as KeyRow[];
      return rows.map((r) => ({
        kid: r.kid,
        alg: r.alg,
        status: r.status,
        createdAt: Number(r.created_at),
        retiredAt: r.retired_at === null ? null : Number(r.retired_at),
        expiresAt: r.expires_at === null ? null : Number(r.expires_at),
      }));
    },

    /** Deletes retired keys whose publication window has passed. */
    async deleteExpired(now = Date.now()): Promise<number> {
      return knex('signing_keys').where({ status: 'previous' }).andWhere('expires_at', '<=', now).delete();
    },
  };
}
