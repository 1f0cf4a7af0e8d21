import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { createKeyRepository, type LockedKeyStatements } from '../../storage/keys.js';

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

async function insertSigningKey(locked: LockedKeyStatements, key: { alg: string; kid: string; jwk: JWK }, now: number): Promise<void> {
  await locked.insertSigningKey({ kid: key.kid, alg: key.alg, privateJwk: JSON.stringify(key.jwk) }, now);
}

async function insertCookieKey(locked: LockedKeyStatements, now: number): Promise<void> {
  await locked.insertCookieKey(randomBytes(32).toString('base64url'), now, COOKIE_KEYS_KEPT);
}

export type KeyStore = ReturnType<typeof createKeyStore>;

/** Signing and cookie keys kept in the database so every process shares them. */
export function createKeyStore(knex: Knex) {
  const stored = createKeyRepository(knex);
  return {
    /**
     * Generates the first keys when there are none. Runs under a lock, so two processes
     * booting at once on one database end up with the same keys.
     */
    async ensureKeys(): Promise<void> {
      const existing = await stored.currentAlgorithms();
      if (SIGNING_ALGORITHMS.every((alg) => existing.includes(alg)) && (await stored.hasCookieKey())) return;
      // Generate outside the lock (RSA takes a while); insert only what is still missing inside it.
      const generated = await generateKeySet();
      await stored.withLock(async (locked) => {
        const now = Date.now();
        const current = await locked.currentAlgorithms();
        for (const key of generated) {
          if (!current.includes(key.alg)) await insertSigningKey(locked, key, now);
        }
        if (!(await locked.hasCookieKey())) await insertCookieKey(locked, now);
      });
    },

    /** Current keys first (they sign), then previous keys still within their publication window. */
    async load(now = Date.now()): Promise<KeyMaterial> {
      const rows = await stored.publishedSigningKeys(now);
      const cookieKeys = await stored.cookieSecrets();
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
      return stored.withLock(async (locked) => {
        const now = Date.now();
        const retired = await locked.currentKids();
        await locked.retireCurrent(now, now + retainMs);
        for (const key of generated) await insertSigningKey(locked, key, now);
        await insertCookieKey(locked, now);
        const added = await locked.currentKids();
        return { added, retired };
      });
    },

    async list(): Promise<SigningKeyRecord[]> {
      const rows = await stored.listSigningKeys();
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
      return stored.deleteExpired(now);
    },
  };
}
