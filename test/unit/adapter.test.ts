import type { Knex } from 'knex';
import type { AdapterPayload } from 'oidc-provider';
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/storage/knex.js';
import { migrateLatest } from '../../src/storage/migrate.js';
import { KnexAdapter } from '../../src/oidc/adapter.js';
import { CLOCK_TOLERANCE_SECONDS } from '../../src/oidc/clock-tolerance.js';
import { secretDigest, storedIdOf } from '../../src/oidc/stored-ids.js';
import { revokeAccount, sweepExpired } from '../../src/storage/oidc-payloads.js';

const TOLERANCE_MS = CLOCK_TOLERANCE_SECONDS * 1000;
import { freshDatabase, type TestDatabase } from '../helpers/database.js';
import { BACKENDS } from '../helpers/env.js';

describe.each(BACKENDS)('KnexAdapter (%s)', (backend) => {
  let db: TestDatabase;
  let knex: Knex;

  beforeEach(async () => {
    db = await freshDatabase(backend);
    knex = openDatabase(loadConfig({ DATABASE_URL: db.url }).database);
    await migrateLatest(knex);
  });

  afterEach(async () => {
    await knex?.destroy();
    await db?.drop();
  });

  const adapter = (model: string) => new KnexAdapter(knex, model, { clockTolerance: CLOCK_TOLERANCE_SECONDS });
  /** The id column of the row the library calls `id` (a digest for models whose ids are secrets). */
  const sid = storedIdOf;

  /** Pushes a stored row's expiry into the past without waiting. */
  const expire = (model: string, id: string) =>
    knex('oidc_payloads').where({ model, id: sid(model, id) }).update({ expires_at: Date.now() - 1000 });

  const rowCount = async (where: Record<string, string> = {}) => {
    const row = await knex('oidc_payloads').where(where).count({ n: '*' }).first();
    return Number(row?.['n']);
  };

  function tokenPayload(kind: string, jti: string, extra: Partial<AdapterPayload> = {}): AdapterPayload {
    return {
      kind,
      jti,
      iat: 1_700_000_000,
      exp: 1_700_003_600,
      accountId: 'acc-1',
      clientId: 'client-1',
      scope: 'openid profile',
      claims: { id_token: { email: null } },
      resource: ['https://api.example.com'],
      ...extra,
    };
  }

  describe('upsert / find', () => {
    it('round-trips the payload unchanged', async () => {
      const payload = tokenPayload('AccessToken', 'at-1', { grantId: 'g1', 'x-nested': { a: [1, 'two', null, true] } });
      await adapter('AccessToken').upsert('at-1', payload, 3600);
      const found = await adapter('AccessToken').find('at-1');
      expect(found).toEqual(payload);
      expect(found).not.toHaveProperty('consumed');
    });

    it('fills the lookup columns from the payload', async () => {
      await adapter('AccessToken').upsert('at-1', tokenPayload('AccessToken', 'at-1', { grantId: 'g1' }), 60);
      const row = await knex('oidc_payloads').where({ model: 'AccessToken', id: sid('AccessToken', 'at-1') }).first();
      expect(row).toMatchObject({ grant_id: 'g1', account_id: 'acc-1', client_id: 'client-1', uid: null, user_code: null });
    });

    it('overwrites an existing row, lookup columns and expiry included', async () => {
      const sessions = adapter('Session');
      await sessions.upsert('s-1', { kind: 'Session', jti: 's-1', uid: 'uid-old', accountId: 'acc-1' }, 60);
      const second = { kind: 'Session', jti: 's-1', uid: 'uid-new', accountId: 'acc-2', loginTs: 1_700_000_000 };
      await sessions.upsert('s-1', second);

      expect(await sessions.find('s-1')).toEqual(second);
      expect(await rowCount({ model: 'Session' })).toBe(1);
      // Stale lookup values must not keep matching after the overwrite.
      expect(await sessions.findByUid('uid-old')).toBeUndefined();
      expect(await sessions.findByUid('uid-new')).toEqual({ ...second, jti: expect.any(String) });
      const row = await knex('oidc_payloads').where({ model: 'Session', id: sid('Session', 's-1') }).first();
      expect(row).toMatchObject({ account_id: 'acc-2', expires_at: null });
    });

    it('returns undefined for an unknown id', async () => {
      expect(await adapter('AccessToken').find('nope')).toBeUndefined();
    });

    it('stores expires_at as now + expiresIn seconds + the clock tolerance', async () => {
      const before = Date.now();
      await adapter('AccessToken').upsert('at-1', tokenPayload('AccessToken', 'at-1'), 120);
      const after = Date.now();
      const row = await knex('oidc_payloads').where({ model: 'AccessToken', id: sid('AccessToken', 'at-1') }).first('expires_at');
      // Read back as a number on both drivers (pg's int8 is parsed to number in src/storage/knex.ts).
      expect(typeof row.expires_at).toBe('number');
      expect(row.expires_at).toBeGreaterThanOrEqual(before + 120_000 + TOLERANCE_MS);
      expect(row.expires_at).toBeLessThanOrEqual(after + 120_000 + TOLERANCE_MS);
    });

    it('hides an expired row from find (the row stays until swept)', async () => {
      await adapter('AccessToken').upsert('at-1', tokenPayload('AccessToken', 'at-1'), 3600);
      expect(await adapter('AccessToken').find('at-1')).toBeDefined();
      await expire('AccessToken', 'at-1');
      expect(await adapter('AccessToken').find('at-1')).toBeUndefined();
      expect(await rowCount({ model: 'AccessToken', id: sid('AccessToken', 'at-1') })).toBe(1);
    });

    it('treats an expiresIn below minus the clock tolerance as already expired', async () => {
      await adapter('AccessToken').upsert('at-1', tokenPayload('AccessToken', 'at-1'), -CLOCK_TOLERANCE_SECONDS - 5);
      expect(await adapter('AccessToken').find('at-1')).toBeUndefined();
    });

    it('never expires a row upserted without expiresIn', async () => {
      await adapter('Grant').upsert('g1', { kind: 'Grant', jti: 'g1', accountId: 'acc-1', clientId: 'client-1' });
      const row = await knex('oidc_payloads').where({ model: 'Grant', id: 'g1' }).first('expires_at');
      expect(row.expires_at).toBeNull();
      expect(await adapter('Grant').find('g1')).toMatchObject({ jti: 'g1' });
      // Not even a sweep far in the future removes it.
      expect(await sweepExpired(knex, Date.now() + 10 * 365 * 86_400_000)).toBe(0);
      expect(await adapter('Grant').find('g1')).toBeDefined();
    });
  });

  describe('findByUid / findByUserCode', () => {
    it('finds a Session by uid', async () => {
      const session = { kind: 'Session', jti: 's-1', uid: 'uid-1', accountId: 'acc-1', exp: 1_700_003_600 };
      await adapter('Session').upsert('s-1', session, 3600);
      expect(await adapter('Session').findByUid('uid-1')).toEqual({ ...session, jti: expect.any(String) });
      expect(await adapter('Session').findByUid('uid-2')).toBeUndefined();
      // The uid lookup is scoped to the model.
      expect(await adapter('Interaction').findByUid('uid-1')).toBeUndefined();
      await expire('Session', 's-1');
      expect(await adapter('Session').findByUid('uid-1')).toBeUndefined();
    });

    it('finds a DeviceCode by userCode', async () => {
      const device = tokenPayload('DeviceCode', 'dc-1', { userCode: 'BCDF-GHJK', deviceInfo: { ip: '127.0.0.1' } });
      await adapter('DeviceCode').upsert('dc-1', device, 600);
      expect(await adapter('DeviceCode').findByUserCode('BCDF-GHJK')).toEqual({ ...device, jti: expect.any(String) });
      expect(await adapter('DeviceCode').findByUserCode('XXXX-XXXX')).toBeUndefined();
      await expire('DeviceCode', 'dc-1');
      expect(await adapter('DeviceCode').findByUserCode('BCDF-GHJK')).toBeUndefined();
    });

    it('does not treat empty lookup values as matchable', async () => {
      // str() stores '' as NULL; finding by '' must not return a row with no uid.
      await adapter('Session').upsert('s-1', { kind: 'Session', jti: 's-1', uid: '' }, 60);
      expect(await adapter('Session').findByUid('')).toBeUndefined();
    });
  });

  describe('consume', () => {
    it('sets consumed (epoch seconds) on the next find and keeps the payload', async () => {
      const code = tokenPayload('AuthorizationCode', 'code-1', { grantId: 'g1' });
      await adapter('AuthorizationCode').upsert('code-1', code, 60);
      const before = Date.now();
      await adapter('AuthorizationCode').consume('code-1');
      const after = Date.now();

      const found = await adapter('AuthorizationCode').find('code-1');
      expect(found).toEqual({ ...code, consumed: expect.any(Number) });
      const consumed = found?.consumed as number;
      expect(Number.isInteger(consumed)).toBe(true);
      // Seconds, not milliseconds: between the two clock readings, divided by 1000.
      expect(consumed).toBeGreaterThanOrEqual(Math.floor(before / 1000));
      expect(consumed).toBeLessThanOrEqual(Math.floor(after / 1000));
    });

    it('lets a non-grant model be consumed twice without error and keeps the first time', async () => {
      const interactions = adapter('Interaction');
      await interactions.upsert('i-1', { kind: 'Interaction', jti: 'i-1', uid: 'i-1', grantId: 'g1' }, 60);
      await interactions.consume('i-1');
      const first = await knex('oidc_payloads').where({ model: 'Interaction', id: sid('Interaction', 'i-1') }).first('consumed_at');
      await expect(interactions.consume('i-1')).resolves.toBeUndefined();
      const second = await knex('oidc_payloads').where({ model: 'Interaction', id: sid('Interaction', 'i-1') }).first('consumed_at');
      expect(second.consumed_at).toBe(first.consumed_at);
      // Nothing of the grant was touched: Interaction replays are not grant replays.
      expect(await interactions.find('i-1')).toMatchObject({ consumed: expect.any(Number) });
    });

    /** A grant g1 with a code, an access and a refresh token, plus an unrelated grant g2. */
    async function seedTwoGrants(): Promise<void> {
      await adapter('Grant').upsert('g1', { kind: 'Grant', jti: 'g1', accountId: 'acc-1', clientId: 'client-1' }, 3600);
      await adapter('AuthorizationCode').upsert('code-1', tokenPayload('AuthorizationCode', 'code-1', { grantId: 'g1' }), 60);
      await adapter('AccessToken').upsert('at-1', tokenPayload('AccessToken', 'at-1', { grantId: 'g1' }), 3600);
      await adapter('RefreshToken').upsert('rt-1', tokenPayload('RefreshToken', 'rt-1', { grantId: 'g1' }), 86400);
      await adapter('Grant').upsert('g2', { kind: 'Grant', jti: 'g2', accountId: 'acc-1', clientId: 'client-1' }, 3600);
      await adapter('AccessToken').upsert('at-2', tokenPayload('AccessToken', 'at-2', { grantId: 'g2' }), 3600);
    }

    async function expectGrantG1RevokedAndG2Intact(): Promise<void> {
      expect(await rowCount({ grant_id: 'g1' })).toBe(0);
      expect(await adapter('Grant').find('g1')).toBeUndefined();
      expect(await adapter('AccessToken').find('at-1')).toBeUndefined();
      expect(await adapter('RefreshToken').find('rt-1')).toBeUndefined();
      expect(await adapter('AuthorizationCode').find('code-1')).toBeUndefined();
      expect(await adapter('Grant').find('g2')).toMatchObject({ jti: 'g2' });
      expect(await adapter('AccessToken').find('at-2')).toMatchObject({ jti: 'at-2', grantId: 'g2' });
    }

    it('rejects a second AuthorizationCode consume with invalid_grant and revokes the grant', async () => {
      await seedTwoGrants();
      const codes = adapter('AuthorizationCode');
      await codes.consume('code-1');
      // The first consume alone revokes nothing.
      expect(await adapter('AccessToken').find('at-1')).toBeDefined();

      await expect(codes.consume('code-1')).rejects.toMatchObject({ error: 'invalid_grant' });
      await expectGrantG1RevokedAndG2Intact();
    });

    it('also treats a replayed RefreshToken as a grant replay', async () => {
      await seedTwoGrants();
      await adapter('RefreshToken').consume('rt-1');
      await expect(adapter('RefreshToken').consume('rt-1')).rejects.toMatchObject({ error: 'invalid_grant' });
      await expectGrantG1RevokedAndG2Intact();
    });

    // The library checks `consumed` on a copy it read before calling consume(), so parallel
    // redemptions of one code all reach the adapter: the adapter alone must pick one winner.
    // On PostgreSQL the pool has 10 connections, so the ten UPDATEs really run concurrently.
    it('lets exactly one of 10 parallel consumes of one code win', async () => {
      await seedTwoGrants();
      const codes = adapter('AuthorizationCode');
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => codes.consume('code-1')));

      const fulfilled = results.filter((r) => r.status === 'fulfilled');
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(fulfilled).toHaveLength(1);
      expect(rejected).toHaveLength(9);
      for (const r of rejected) expect(r.reason).toMatchObject({ error: 'invalid_grant' });
      // A lost race is a replay: the grant and everything issued from it is gone.
      await expectGrantG1RevokedAndG2Intact();
    });
  });

  // Issue 15, finding 3: the library never sees a replay lost in a race, so the adapter hands
  // it to the provider's own replay answer (revocation, grant.revoked, audit) when given one.
  it('hands each lost consume race to onReplay with the grant, instead of deleting the grant itself', async () => {
    const replays: string[] = [];
    const withHook = (model: string) =>
      new KnexAdapter(knex, model, { clockTolerance: CLOCK_TOLERANCE_SECONDS, onReplay: async (grantId) => void replays.push(grantId) });
    await adapter('Grant').upsert('g1', { kind: 'Grant', jti: 'g1', accountId: 'acc-1', clientId: 'client-1' }, 3600);
    await adapter('RefreshToken').upsert('rt-1', tokenPayload('RefreshToken', 'rt-1', { grantId: 'g1' }), 3600);
    const results = await Promise.allSettled([withHook('RefreshToken').consume('rt-1'), withHook('RefreshToken').consume('rt-1')]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { error: 'invalid_grant' } });
    expect(replays).toEqual(['g1']);
    // What to revoke was onReplay's to decide: the adapter deleted nothing.
    expect(await adapter('Grant').find('g1')).toMatchObject({ jti: 'g1' });
    // A consume that finds nothing to consume (no row) is no replay of a grant.
    await expect(withHook('RefreshToken').consume('never-issued')).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(replays).toEqual(['g1']);
  });

  // RFC 9126: a request_uri answers once. The library checks `consumed` on a copy it read
  // earlier, so two completions of one pushed request both reach consume(): one must lose.
  it('lets exactly one of 10 parallel consumes of one pushed authorization request win', async () => {
    const pushed = adapter('PushedAuthorizationRequest');
    await pushed.upsert('par-1', { kind: 'PushedAuthorizationRequest', jti: 'par-1', request: 'e30.e30.' }, 60);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => pushed.consume('par-1')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected).toHaveLength(9);
    for (const r of rejected) expect(r.reason).toMatchObject({ error: 'invalid_request_uri' });
    await expect(pushed.consume('par-1')).rejects.toMatchObject({ error: 'invalid_request_uri' });
  });

  describe('destroy / revokeByGrantId', () => {
    it('destroys one row of one model only', async () => {
      await adapter('AccessToken').upsert('same', tokenPayload('AccessToken', 'same'), 60);
      await adapter('ClientCredentials').upsert('same', tokenPayload('ClientCredentials', 'same'), 60);
      await adapter('AccessToken').upsert('other', tokenPayload('AccessToken', 'other'), 60);

      await adapter('AccessToken').destroy('same');
      expect(await adapter('AccessToken').find('same')).toBeUndefined();
      expect(await adapter('ClientCredentials').find('same')).toMatchObject({ kind: 'ClientCredentials' });
      expect(await adapter('AccessToken').find('other')).toMatchObject({ jti: 'other' });
      // Destroying something absent is a no-op, not an error.
      await expect(adapter('AccessToken').destroy('never-existed')).resolves.toBeUndefined();
    });

    it("revokeByGrantId removes only this model's rows of that grant", async () => {
      await adapter('AccessToken').upsert('at-1', tokenPayload('AccessToken', 'at-1', { grantId: 'g1' }), 60);
      await adapter('AccessToken').upsert('at-2', tokenPayload('AccessToken', 'at-2', { grantId: 'g1' }), 60);
      await adapter('AccessToken').upsert('at-3', tokenPayload('AccessToken', 'at-3', { grantId: 'g2' }), 60);
      await adapter('RefreshToken').upsert('rt-1', tokenPayload('RefreshToken', 'rt-1', { grantId: 'g1' }), 60);
      await adapter('Grant').upsert('g1', { kind: 'Grant', jti: 'g1' }, 60);

      await adapter('AccessToken').revokeByGrantId('g1');
      expect(await adapter('AccessToken').find('at-1')).toBeUndefined();
      expect(await adapter('AccessToken').find('at-2')).toBeUndefined();
      expect(await adapter('AccessToken').find('at-3')).toMatchObject({ grantId: 'g2' });
      expect(await adapter('RefreshToken').find('rt-1')).toMatchObject({ grantId: 'g1' });
      expect(await adapter('Grant').find('g1')).toMatchObject({ jti: 'g1' });
      expect(await rowCount()).toBe(3);
    });
  });

  it('keeps models isolated: the same id under two models is two rows', async () => {
    const session = { kind: 'Session', jti: 'dup', uid: 'u-s', accountId: 'acc-1' };
    const interaction = { kind: 'Interaction', jti: 'dup', uid: 'u-i', params: { client_id: 'client-1' } };
    await adapter('Session').upsert('dup', session, 60);
    await adapter('Interaction').upsert('dup', interaction, 60);

    expect(await adapter('Session').find('dup')).toEqual(session);
    expect(await adapter('Interaction').find('dup')).toEqual(interaction);
    await adapter('Interaction').consume('dup');
    expect(await adapter('Session').find('dup')).not.toHaveProperty('consumed');
    expect(await rowCount()).toBe(2);
  });

  describe('sweepExpired / revokeAccount', () => {
    it('sweepExpired deletes only expired rows and returns how many', async () => {
      await adapter('AccessToken').upsert('old-1', tokenPayload('AccessToken', 'old-1'), 3600);
      await adapter('Session').upsert('old-2', { kind: 'Session', jti: 'old-2', uid: 'u' }, 3600);
      await adapter('AccessToken').upsert('live', tokenPayload('AccessToken', 'live'), 3600);
      await adapter('Grant').upsert('forever', { kind: 'Grant', jti: 'forever' });
      await expire('AccessToken', 'old-1');
      await expire('Session', 'old-2');

      expect(await sweepExpired(knex)).toBe(2);
      const left = await knex('oidc_payloads').orderBy('model').pluck('id');
      expect(left).toEqual([sid('AccessToken', 'live'), 'forever']);
      // Idempotent: nothing more to sweep now...
      expect(await sweepExpired(knex)).toBe(0);
      // ...but an explicit later "now" catches the live one once its hour and the tolerance are over.
      expect(await sweepExpired(knex, Date.now() + 3_601_000 + TOLERANCE_MS)).toBe(1);
      expect(await knex('oidc_payloads').pluck('id')).toEqual(['forever']);
    });

    it('revokeAccount deletes that account’s rows only', async () => {
      await adapter('Session').upsert('s-1', { kind: 'Session', jti: 's-1', uid: 'u1', accountId: 'acc-1' }, 60);
      await adapter('Grant').upsert('g1', { kind: 'Grant', jti: 'g1', accountId: 'acc-1' }, 60);
      await adapter('AccessToken').upsert('at-1', tokenPayload('AccessToken', 'at-1', { accountId: 'acc-1' }), 60);
      await adapter('AccessToken').upsert('at-2', tokenPayload('AccessToken', 'at-2', { accountId: 'acc-2' }), 60);
      await adapter('ClientCredentials').upsert('cc-1', { kind: 'ClientCredentials', jti: 'cc-1', clientId: 'client-1' }, 60);

      expect(await revokeAccount(knex, 'acc-1')).toBe(3);
      expect(await knex('oidc_payloads').orderBy('model').pluck('id')).toEqual([sid('AccessToken', 'at-2'), sid('ClientCredentials', 'cc-1')]);
      expect(await revokeAccount(knex, 'acc-1')).toBe(0);
    });
  });

  // Issue 15, finding 1: rows may share a user code (or a uid), and an expired row may not be
  // swept yet. The lookup must skip expired rows before it picks one, and pick the newest.
  describe('lookups by uid and user code pick the newest live row', () => {
    const pause = () => new Promise((r) => setTimeout(r, 5));

    it('findByUserCode passes over an expired, unswept row with the same user code', async () => {
      const codes = adapter('DeviceCode');
      await codes.upsert('dc-old', tokenPayload('DeviceCode', 'dc-old', { userCode: 'BCDFGHJK', deviceInfo: { ua: 'old' } }), 600);
      await expire('DeviceCode', 'dc-old');
      await pause();
      await codes.upsert('dc-new', tokenPayload('DeviceCode', 'dc-new', { userCode: 'BCDFGHJK', deviceInfo: { ua: 'new' } }), 600);
      expect(await codes.findByUserCode('BCDFGHJK')).toMatchObject({ deviceInfo: { ua: 'new' } });
    });

    it('findByUserCode picks the newest of two live rows, whichever was written first', async () => {
      const codes = adapter('DeviceCode');
      // The newer row gets the smaller id, so neither insertion nor id order gives the answer.
      await codes.upsert('dc-b', tokenPayload('DeviceCode', 'dc-b', { userCode: 'BCDFGHJK', deviceInfo: { ua: 'older' } }), 600);
      await pause();
      await codes.upsert('dc-a', tokenPayload('DeviceCode', 'dc-a', { userCode: 'BCDFGHJK', deviceInfo: { ua: 'newer' } }), 600);
      // Saving the older one again does not make it newer.
      await codes.upsert('dc-b', tokenPayload('DeviceCode', 'dc-b', { userCode: 'BCDFGHJK', deviceInfo: { ua: 'older' }, inFlight: true }), 600);
      for (let i = 0; i < 3; i++) expect(await codes.findByUserCode('BCDFGHJK')).toMatchObject({ deviceInfo: { ua: 'newer' } });
    });

    it('findByUid passes over an expired session with the same uid and picks the newest live one', async () => {
      const sessions = adapter('Session');
      await sessions.upsert('s-expired', { kind: 'Session', jti: 's-expired', uid: 'uid-1', accountId: 'acc-0' }, 60);
      await expire('Session', 's-expired');
      await pause();
      await sessions.upsert('s-2', { kind: 'Session', jti: 's-2', uid: 'uid-1', accountId: 'acc-older' }, 60);
      await pause();
      await sessions.upsert('s-1', { kind: 'Session', jti: 's-1', uid: 'uid-1', accountId: 'acc-newer' }, 60);
      expect(await sessions.findByUid('uid-1')).toMatchObject({ accountId: 'acc-newer' });
      await sessions.destroy('s-1');
      expect(await sessions.findByUid('uid-1')).toMatchObject({ accountId: 'acc-older' });
    });
  });

  // Issue 15, finding 2: the library accepts clockTolerance seconds of skew and answers
  // "expired" (RFC 8628 expired_token) only for a row it still finds.
  describe('expired rows stay findable through the clock tolerance', () => {
    it('finds a row whose expiry has passed by less than the tolerance', async () => {
      // As the library saves a device code polled 2 s after its end: remainingTTL is -2.
      await adapter('DeviceCode').upsert('dc-1', tokenPayload('DeviceCode', 'dc-1', { userCode: 'BCDFGHJK' }), -2);
      expect(await adapter('DeviceCode').find('dc-1')).toMatchObject({ kind: 'DeviceCode', jti: 'dc-1' });
      expect(await adapter('DeviceCode').findByUserCode('BCDFGHJK')).toMatchObject({ kind: 'DeviceCode' });
    });

    it('is not swept before the tolerance has passed', async () => {
      const before = Date.now();
      await adapter('AccessToken').upsert('at-1', tokenPayload('AccessToken', 'at-1'), 60);
      expect(await sweepExpired(knex, before + 60_000 + 1000)).toBe(0);
      expect(await adapter('AccessToken').find('at-1')).toBeDefined();
      expect(await sweepExpired(knex, Date.now() + 60_000 + TOLERANCE_MS)).toBe(1);
    });
  });

  // Issue 15, finding 4: a copy of the table must not hold a working credential.
  describe('bearer secrets are stored as SHA-256 digests', () => {
    const everything = async () => JSON.stringify(await knex('oidc_payloads').select());

    it('keys a token by the digest of its id, without the id in the payload, and hands the id back', async () => {
      const payload = tokenPayload('RefreshToken', 'rt-secret-value', { grantId: 'g1' });
      await adapter('RefreshToken').upsert('rt-secret-value', payload, 60);
      const row = await knex('oidc_payloads').where({ model: 'RefreshToken' }).first();
      expect(row.id).toBe(secretDigest('rt-secret-value'));
      expect(row.id).toMatch(/^[0-9a-f]{64}$/);
      expect(await everything()).not.toContain('rt-secret-value');
      expect(await adapter('RefreshToken').find('rt-secret-value')).toEqual(payload);
    });

    it('does not find a row by its digest: what a leak shows is no credential', async () => {
      await adapter('AccessToken').upsert('at-secret', tokenPayload('AccessToken', 'at-secret'), 60);
      expect(await adapter('AccessToken').find(secretDigest('at-secret'))).toBeUndefined();
      // Nor by something shaped like a reference to it, without this process's key.
      expect(await adapter('AccessToken').find(`~${secretDigest('at-secret')}.${'A'.repeat(43)}`)).toBeUndefined();
      await adapter('AccessToken').consume(secretDigest('at-secret'));
      expect(await adapter('AccessToken').find('at-secret')).not.toHaveProperty('consumed');
    });

    it('stores a session without its cookie value; found by uid it can still be saved and destroyed', async () => {
      const sessions = adapter('Session');
      await sessions.upsert('cookie-value', { kind: 'Session', jti: 'cookie-value', uid: 'uid-1', accountId: 'acc-1' }, 60);
      expect(await everything()).not.toContain('cookie-value');
      const found = await sessions.findByUid('uid-1');
      expect(found?.jti).not.toBe('cookie-value');
      await sessions.upsert(found!.jti!, { ...found!, accountId: 'acc-2' }, 60);
      expect(await rowCount({ model: 'Session' })).toBe(1);
      expect(await sessions.find('cookie-value')).toMatchObject({ accountId: 'acc-2', jti: 'cookie-value' });
      await sessions.destroy(found!.jti!);
      expect(await sessions.find('cookie-value')).toBeUndefined();
    });

    it('stores the user code as a digest; a device code found by it is saved, consumed and destroyed under its own row', async () => {
      const codes = adapter('DeviceCode');
      await codes.upsert('device-code-value', tokenPayload('DeviceCode', 'device-code-value', { userCode: 'BCDFGHJK', grantId: 'g1' }), 600);
      const row = await knex('oidc_payloads').where({ model: 'DeviceCode' }).first();
      expect(row.user_code).toBe(secretDigest('BCDFGHJK'));
      expect(await everything()).not.toContain('device-code-value');
      expect(await everything()).not.toContain('BCDFGHJK');

      const found = await codes.findByUserCode('BCDFGHJK');
      expect(found).toMatchObject({ userCode: 'BCDFGHJK', kind: 'DeviceCode' });
      // As the library saves an approval: the payload it found, under the id it was given.
      await codes.upsert(found!.jti!, { ...found!, accountId: 'acc-9' }, 600);
      expect(await rowCount({ model: 'DeviceCode' })).toBe(1);
      expect(await codes.find('device-code-value')).toMatchObject({ accountId: 'acc-9', jti: 'device-code-value' });
      // The user code stays findable after a save that did not carry it.
      const byId = await codes.find('device-code-value');
      expect(byId).not.toHaveProperty('userCode');
      await codes.upsert('device-code-value', { ...byId!, inFlight: true }, 600);
      expect(await codes.findByUserCode('BCDFGHJK')).toMatchObject({ inFlight: true });

      await codes.consume(found!.jti!);
      expect(await codes.find('device-code-value')).toHaveProperty('consumed');
      await codes.destroy(found!.jti!);
      expect(await rowCount({ model: 'DeviceCode' })).toBe(0);
    });

    it("stores an Interaction's session cookie, device code and pushed request as digests, handed back as references to those rows", async () => {
      await adapter('Session').upsert('cookie-value', { kind: 'Session', jti: 'cookie-value', uid: 'uid-1' }, 60);
      await adapter('DeviceCode').upsert('device-code-value', tokenPayload('DeviceCode', 'device-code-value'), 600);
      await adapter('PushedAuthorizationRequest').upsert('par-value', { kind: 'PushedAuthorizationRequest', jti: 'par-value', request: 'e30.e30.' }, 60);
      const interactions = adapter('Interaction');
      const interaction = {
        kind: 'Interaction',
        jti: 'interaction-uid',
        session: { accountId: 'acc-1', uid: 'uid-1', cookie: 'cookie-value' },
        deviceCode: 'device-code-value',
        parJti: 'par-value',
        returnTo: '/o/auth/interaction-uid',
      };
      await interactions.upsert('interaction-uid', interaction, 60);
      const stored = await everything();
      // The uid too: it is the _interaction cookie's value.
      for (const secret of ['cookie-value', 'device-code-value', 'par-value', 'interaction-uid']) expect(stored).not.toContain(secret);

      const found = (await interactions.find('interaction-uid')) as typeof interaction | undefined;
      expect(found).toMatchObject({ jti: 'interaction-uid', returnTo: '/o/auth/interaction-uid', session: { accountId: 'acc-1', uid: 'uid-1' } });
      expect(await adapter('Session').find(found!.session.cookie)).toMatchObject({ uid: 'uid-1' });
      expect(await adapter('DeviceCode').find(found!.deviceCode)).toMatchObject({ kind: 'DeviceCode' });
      expect(await adapter('PushedAuthorizationRequest').find(found!.parJti)).toMatchObject({ request: 'e30.e30.' });
      // A reference names a row of its own model only.
      expect(await adapter('AccessToken').find(found!.deviceCode)).toBeUndefined();
      // Saved again as found (references in it), the Interaction still stores digests only.
      await interactions.upsert('interaction-uid', found!, 60);
      expect(await everything()).not.toContain('cookie-value');
      expect(await adapter('DeviceCode').find(((await interactions.find('interaction-uid')) as typeof interaction).deviceCode)).toMatchObject({ kind: 'DeviceCode' });
    });
  });
});
