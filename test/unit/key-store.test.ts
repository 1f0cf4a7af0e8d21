import { setTimeout as sleep } from 'node:timers/promises';
import { calculateJwkThumbprint, createLocalJWKSet, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import type { Knex } from 'knex';
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/storage/knex.js';
import { migrateLatest } from '../../src/storage/migrate.js';
import { createKeyStore, type KeyStore } from '../../src/core/keys/key-store.js';
import { freshDatabase, type TestDatabase } from '../helpers/database.js';
import { BACKENDS } from '../helpers/env.js';

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi'] as const;

/** What a JWKS endpoint would publish: the key without its private members. */
function publicOnly(jwk: JWK): JWK {
  const copy: Record<string, unknown> = { ...jwk };
  for (const member of PRIVATE_MEMBERS) delete copy[member];
  return copy as JWK;
}

async function signWith(jwk: JWK, claims: Record<string, unknown> = { sub: 'user-1' }): Promise<string> {
  const key = await importJWK(jwk, jwk.alg);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: jwk.alg!, kid: jwk.kid! })
    .setIssuedAt()
    .setIssuer('https://id.example.com/o')
    .setExpirationTime('5m')
    .sign(key);
}

describe.each(BACKENDS)('key store (%s)', (backend) => {
  let db: TestDatabase;
  let knex: Knex;
  let store: KeyStore;
  /** Extra instances opened by a test (the "second process"); destroyed after it. */
  const extra: Knex[] = [];

  const open = () => openDatabase(loadConfig({ DATABASE_URL: db.url }).database);

  beforeEach(async () => {
    db = await freshDatabase(backend);
    knex = open();
    await migrateLatest(knex);
    store = createKeyStore(knex);
  });

  afterEach(async () => {
    for (const k of extra.splice(0)) await k.destroy();
    await knex?.destroy();
    await db?.drop();
  });

  const cookieRows = async () => Number((await knex('cookie_keys').count({ n: '*' }).first())?.['n']);

  describe('ensureKeys', () => {
    it('creates one current RS256 and one current ES256 key and a cookie key', async () => {
      expect(await store.list()).toEqual([]);
      await store.ensureKeys();

      const keys = await store.list();
      expect(keys.map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);
      for (const key of keys) {
        expect(key).toMatchObject({ status: 'current', retiredAt: null, expiresAt: null });
        expect(typeof key.createdAt).toBe('number');
      }
      expect(await cookieRows()).toBe(1);
    });

    it('changes nothing when called again', async () => {
      await store.ensureKeys();
      const before = await store.load();
      const listed = await store.list();
      await store.ensureKeys();
      expect(await store.list()).toEqual(listed);
      expect(await store.load()).toEqual(before);
      expect(await cookieRows()).toBe(1);
    });

    it('only fills in what is missing', async () => {
      await store.ensureKeys();
      const es = (await store.list()).find((k) => k.alg === 'ES256')!;
      // Simulate a database where the RS256 key was lost: ensureKeys must add one back and
      // leave the existing ES256 key alone.
      await knex('signing_keys').where({ alg: 'RS256' }).delete();
      await store.ensureKeys();
      const after = await store.list();
      expect(after.map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);
      expect(after.find((k) => k.alg === 'ES256')?.kid).toBe(es.kid);
      expect(await cookieRows()).toBe(1);
    });

    // Two processes booting together on one empty database: without the lock both would see
    // "no keys" and each insert a pair, leaving four current keys and two cookie keys, and
    // the processes would sign with different keys.
    it('gives two instances booting at once the same keys', async () => {
      const second = open();
      extra.push(second);
      const other = createKeyStore(second);

      const results = await Promise.allSettled([store.ensureKeys(), other.ensureKeys()]);
      expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(['ok', 'ok']);

      const keys = await store.list();
      expect(keys).toHaveLength(2);
      expect(keys.filter((k) => k.status === 'current').map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);
      expect(await cookieRows()).toBe(1);
      const [mine, theirs] = [await store.load(), await other.load()];
      expect(theirs).toEqual(mine);
    });
  });

  describe('load', () => {
    it('returns private JWKs with their thumbprint as kid, and the cookie key', async () => {
      await store.ensureKeys();
      const { jwks, cookieKeys, version } = await store.load();

      expect(jwks.keys).toHaveLength(2);
      for (const jwk of jwks.keys) {
        expect(typeof jwk.d).toBe('string');
        expect(jwk.use).toBe('sig');
        // Current keys carry no key_ops: the provider may sign with them.
        expect(jwk).not.toHaveProperty('key_ops');
        expect(jwk.kid).toBe(await calculateJwkThumbprint(publicOnly(jwk)));
      }
      const rsa = jwks.keys.find((k) => k.alg === 'RS256');
      const ec = jwks.keys.find((k) => k.alg === 'ES256');
      expect(rsa).toMatchObject({ kty: 'RSA', e: 'AQAB' });
      expect(Buffer.from(rsa!.n!, 'base64url').length * 8).toBe(2048);
      for (const member of PRIVATE_MEMBERS) expect(typeof rsa![member]).toBe('string');
      expect(ec).toMatchObject({ kty: 'EC', crv: 'P-256' });

      expect(cookieKeys).toHaveLength(1);
      expect(cookieKeys[0]).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 random bytes, base64url
      expect(typeof version).toBe('string');
    });

    it('signs a JWT with a current private key that verifies against the public-only key', async () => {
      await store.ensureKeys();
      const { jwks } = await store.load();
      const publicSet = createLocalJWKSet({ keys: jwks.keys.map(publicOnly) });

      for (const jwk of jwks.keys) {
        const pub = publicOnly(jwk);
        for (const member of PRIVATE_MEMBERS) expect(pub).not.toHaveProperty(member);
        const jwt = await signWith(jwk, { sub: `for-${jwk.alg}` });

        const direct = await jwtVerify(jwt, await importJWK(pub, jwk.alg));
        expect(direct.payload.sub).toBe(`for-${jwk.alg}`);
        // Same through a JWKS lookup by kid, as a relying party would do.
        const viaSet = await jwtVerify(jwt, publicSet, { issuer: 'https://id.example.com/o' });
        expect(viaSet.protectedHeader).toMatchObject({ alg: jwk.alg, kid: jwk.kid });
      }
    });
  });

  describe('rotate', () => {
    it('adds two current keys and turns the old ones into previous, verify-only keys', async () => {
      await store.ensureKeys();
      const oldKids = (await store.list()).map((k) => k.kid).sort();
      const versionBefore = await store.version();

      const { added, retired } = await store.rotate(60_000);
      expect([...retired].sort()).toEqual(oldKids);
      expect(added).toHaveLength(2);
      expect(added.some((kid) => oldKids.includes(kid))).toBe(false);

      const listed = await store.list();
      expect(listed.filter((k) => k.status === 'current').map((k) => k.kid).sort()).toEqual([...added].sort());
      const previous = listed.filter((k) => k.status === 'previous');
      expect(previous.map((k) => k.kid).sort()).toEqual(oldKids);
      for (const key of previous) expect(key.expiresAt).toBe(key.retiredAt! + 60_000);

      const { jwks, version } = await store.load();
      expect(version).not.toBe(versionBefore);
      // Current keys first (the provider signs with the first usable key of an alg)...
      expect(jwks.keys.slice(0, 2).map((k) => k.kid).sort()).toEqual([...added].sort());
      for (const k of jwks.keys.slice(0, 2)) expect(k).not.toHaveProperty('key_ops');
      // ...then previous keys, still private (the provider needs them as JWKs) but verify-only.
      expect(jwks.keys.slice(2).map((k) => k.kid).sort()).toEqual(oldKids);
      for (const k of jwks.keys.slice(2)) {
        expect(k.key_ops).toEqual(['verify']);
        expect(typeof k.d).toBe('string');
      }
      expect(jwks.keys.filter((k) => !k.key_ops).map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);
    });

    it('keeps tokens signed before a rotation verifiable while the old key is published', async () => {
      await store.ensureKeys();
      const oldRsa = (await store.load()).jwks.keys.find((k) => k.alg === 'RS256')!;
      const jwt = await signWith(oldRsa);
      await store.rotate(60_000);

      const published = createLocalJWKSet({ keys: (await store.load()).jwks.keys.map(publicOnly) });
      const { payload } = await jwtVerify(jwt, published);
      expect(payload.sub).toBe('user-1');
    });

    // load(now) and deleteExpired(now) take the clock as an argument, so the boundary can be
    // checked exactly instead of racing a real timer.
    it('publishes previous keys until expires_at, then drops them', async () => {
      await store.ensureKeys();
      await store.rotate(60_000);
      const previous = (await store.list()).filter((k) => k.status === 'previous');
      const expiresAt = previous[0]!.expiresAt!;
      const previousKids = previous.map((k) => k.kid).sort();

      const justBefore = await store.load(expiresAt - 1);
      expect(justBefore.jwks.keys).toHaveLength(4);
      const atExpiry = await store.load(expiresAt);
      expect(atExpiry.jwks.keys).toHaveLength(2);
      expect(atExpiry.jwks.keys.some((k) => previousKids.includes(k.kid!))).toBe(false);
      // An expiry is a key-set change running processes must notice.
      expect(atExpiry.version).not.toBe(justBefore.version);

      expect(await store.deleteExpired(expiresAt - 1)).toBe(0);
      expect(await store.deleteExpired(expiresAt)).toBe(2);
      expect((await store.list()).map((k) => k.status)).toEqual(['current', 'current']);
    });

    it('lets a short retention lapse in real time', async () => {
      await store.ensureKeys();
      await store.rotate(50);
      const expiresAt = (await store.list()).find((k) => k.status === 'previous')!.expiresAt!;
      // Wait until the clock is certainly past expires_at (no assertion on how long it took).
      while (Date.now() <= expiresAt) await sleep(expiresAt - Date.now() + 5);

      const { jwks } = await store.load();
      expect(jwks.keys).toHaveLength(2);
      expect(jwks.keys.every((k) => !k.key_ops)).toBe(true);
      expect(await store.deleteExpired()).toBe(2);
      expect(await store.list()).toHaveLength(2);
      expect(await store.deleteExpired()).toBe(0);
    });

    it('rotates cookie keys too, newest first, keeping at most three', async () => {
      await store.ensureKeys();
      const seen = [(await store.load()).cookieKeys[0]!];
      for (let i = 0; i < 4; i += 1) {
        await store.rotate(60_000);
        const { cookieKeys } = await store.load();
        // The new secret comes first; it was never used before; the previous newest follows.
        expect(seen).not.toContain(cookieKeys[0]);
        expect(cookieKeys[1]).toBe(seen[0]);
        seen.unshift(cookieKeys[0]!);
        expect(cookieKeys).toEqual(seen.slice(0, Math.min(3, seen.length)));
      }
      expect(await cookieRows()).toBe(3);
      // Four rotations leave eight previous keys (all within retention) and two current ones.
      expect((await store.load()).jwks.keys).toHaveLength(10);
    });
  });
});
