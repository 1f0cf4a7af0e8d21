/**
 * The login throttle against each database: slots for checks in flight, failures that lock
 * exactly at the limit, waits that end, slots of dead processes that run out, and the plain
 * request counter the mail requests use. Two Knex pools on one database stand for two
 * processes.
 */
import type { Knex } from 'knex';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLoginThrottle, type Admission, type ThrottleKey, type ThrottleTiming } from '../../src/core/accounts/login-throttle.js';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/storage/knex.js';
import { migrateLatest } from '../../src/storage/migrate.js';
import { freshDatabase, type TestDatabase } from '../helpers/database.js';
import { BACKENDS } from '../helpers/env.js';

const POLICY = { accountMax: 3, ipMax: 10, windowSeconds: 900, lockoutSeconds: 900 };
const ACCOUNT: ThrottleKey = ['account', 'user:1'];
const IP: ThrottleKey = ['ip', '192.0.2.1'];
const KEYS = [ACCOUNT, IP];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(BACKENDS)('login throttle (%s)', (backend) => {
  let db: TestDatabase;
  let pools: Knex[];

  beforeEach(async () => {
    db = await freshDatabase(backend);
    pools = [];
    await migrateLatest(open());
  });

  afterEach(async () => {
    for (const knex of pools) await knex.destroy();
    await db?.drop();
  });

  function open(): Knex {
    const knex = openDatabase(loadConfig({ DATABASE_URL: db.url }).database);
    pools.push(knex);
    return knex;
  }

  const throttle = (timing: ThrottleTiming = {}, knex = pools[0]!) => createLoginThrottle(knex, POLICY, timing);

  async function rowOf([scope, key]: ThrottleKey) {
    const row = (await pools[0]!('auth_failures').where({ scope, key }).first()) as Record<string, unknown> | undefined;
    return row && { failures: Number(row['failures']), pending: Number(row['pending']), locked: row['locked_until'] !== null && Number(row['locked_until']) > Date.now() };
  }

  /** A check as the authenticator runs it: begin, a check that takes `ms`, then settle. */
  async function check(t: ReturnType<typeof throttle>, right: boolean, ms = 30): Promise<Admission> {
    const admission = await t.begin(KEYS);
    if (!admission.ok) return admission;
    await t.checking(KEYS, () => sleep(ms));
    await (right ? t.succeed(KEYS) : t.fail(KEYS));
    return admission;
  }

  it('admits exactly the limit of simultaneous wrong guesses; the others wait, then learn the lock', async () => {
    const t = throttle();
    const results = await Promise.all(Array.from({ length: 12 }, () => check(t, false)));
    expect(results.filter((r) => r.ok)).toHaveLength(3);
    const refused = results.filter((r): r is Extract<Admission, { ok: false }> => !r.ok);
    expect(refused).toHaveLength(9);
    for (const r of refused) {
      expect(r.busy).toBe(false);
      expect(r.retryAfter).toBeGreaterThan(890);
    }
    expect(await rowOf(ACCOUNT)).toEqual({ failures: 3, pending: 0, locked: true });
    expect(await rowOf(IP)).toEqual({ failures: 3, pending: 0, locked: false });
  });

  it('says which failure locked a key, once', async () => {
    const t = throttle();
    const locked = [];
    for (let i = 0; i < 3; i++) {
      expect((await t.begin(KEYS)).ok).toBe(true);
      locked.push(await t.fail(KEYS));
    }
    expect(locked).toEqual([[], [], ['account']]);
  });

  it('lets every one of many simultaneous right passwords through, one slot after another', async () => {
    const t = throttle();
    const results = await Promise.all(Array.from({ length: 12 }, () => check(t, true)));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(await rowOf(ACCOUNT)).toEqual({ failures: 0, pending: 0, locked: false });
    expect(await rowOf(IP)).toEqual({ failures: 0, pending: 0, locked: false });
  });

  it('shares the limit between two processes: of 12 wrong guesses split over both, 3 are admitted', async () => {
    const a = throttle();
    const b = throttle({}, open());
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => check(i % 2 ? a : b, false)));
    expect(results.filter((r) => r.ok)).toHaveLength(3);
    expect(await rowOf(ACCOUNT)).toEqual({ failures: 3, pending: 0, locked: true });
  });

  it('lets right passwords of another process in as soon as slots free up (seen by polling)', async () => {
    const a = throttle();
    const b = throttle({}, open());
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => check(i % 2 ? a : b, true)));
    expect(results.every((r) => r.ok)).toBe(true);
  });

  it('forgets the account failures on a right password but keeps the slots of other checks in flight', async () => {
    const t = throttle();
    expect((await t.begin(KEYS)).ok).toBe(true);
    await t.fail(KEYS);
    expect((await t.begin(KEYS)).ok).toBe(true); // still in flight
    expect((await t.begin(KEYS)).ok).toBe(true); // the right one
    await t.succeed(KEYS);
    expect(await rowOf(ACCOUNT)).toEqual({ failures: 0, pending: 1, locked: false });
    // The address keeps its failure: a right password among guesses does not reset them.
    expect(await rowOf(IP)).toEqual({ failures: 1, pending: 1, locked: false });
  });

  it('gives the slots back when the check throws', async () => {
    const t = throttle();
    expect((await t.begin(KEYS)).ok).toBe(true);
    await expect(t.checking(KEYS, () => Promise.reject(new Error('hash worker died')))).rejects.toThrow('hash worker died');
    expect(await rowOf(ACCOUNT)).toEqual({ failures: 0, pending: 0, locked: false });
    expect(await rowOf(IP)).toEqual({ failures: 0, pending: 0, locked: false });
  });

  it('answers busy after the longest wait while live slots fill a key, holding nothing meanwhile', async () => {
    const t = throttle({ maxWaitMs: 300 });
    const now = Date.now();
    await pools[0]!('auth_failures').insert({ scope: 'ip', key: IP[1], failures: 0, window_start: now, locked_until: null, pending: 10, pending_until: now + 60_000 });
    const started = Date.now();
    const admission = await t.begin(KEYS);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(admission).toEqual({ ok: false, busy: true, retryAfter: expect.any(Number) });
    expect(admission.ok ? 0 : admission.retryAfter).toBeGreaterThan(0);
    // The account slot taken before the address was found full was given back.
    expect(await rowOf(ACCOUNT)).toEqual({ failures: 0, pending: 0, locked: false });
  });

  it('no longer counts slots past pending_until (a process died mid-check)', async () => {
    const t = throttle({ maxWaitMs: 0 });
    const now = Date.now();
    await pools[0]!('auth_failures').insert({ scope: 'account', key: ACCOUNT[1], failures: 0, window_start: now, locked_until: null, pending: 3, pending_until: now - 1 });
    expect((await t.begin(KEYS)).ok).toBe(true);
    expect(await rowOf(ACCOUNT)).toEqual({ failures: 0, pending: 1, locked: false });
  });

  it('times out slots of a short pending lease and does not go below zero when they settle late', async () => {
    const t = throttle({ pendingMs: 50, maxWaitMs: 0 });
    for (let i = 0; i < 3; i++) expect((await t.begin(KEYS)).ok).toBe(true);
    expect((await t.begin(KEYS)).ok).toBe(false);
    await sleep(80);
    expect((await t.begin(KEYS)).ok).toBe(true);
    for (let i = 0; i < 4; i++) await t.succeed(KEYS);
    expect(await rowOf(ACCOUNT)).toEqual({ failures: 0, pending: 0, locked: false });
  });

  it('starts afresh once a lock has run out, even within the window', async () => {
    const t = createLoginThrottle(pools[0]!, { ...POLICY, lockoutSeconds: 1 }, { maxWaitMs: 0 });
    for (let i = 0; i < 3; i++) {
      expect((await t.begin(KEYS)).ok).toBe(true);
      await t.fail(KEYS);
    }
    expect((await t.begin(KEYS)).ok).toBe(false);
    await sleep(1100);
    expect((await t.begin(KEYS)).ok).toBe(true);
    expect(await rowOf(ACCOUNT)).toEqual({ failures: 0, pending: 1, locked: false });
  });

  it('sweeps old counters but never one a check still holds a slot of', async () => {
    const t = throttle();
    const old = Date.now() - 1_000_000;
    const row = (key: string, pending: number, pendingUntil: number | null) => ({ scope: 'ip', key, failures: 2, window_start: old, locked_until: null, pending, pending_until: pendingUntil });
    await pools[0]!('auth_failures').insert([row('idle', 0, null), row('held', 1, Date.now() + 60_000), row('leaked', 1, Date.now() - 1)]);
    expect(await t.sweep()).toBe(2);
    expect(await pools[0]!('auth_failures').pluck('key')).toEqual(['held']);
  });

  it('keeps count() a plain request counter: every request counts, the one past the limit locks', async () => {
    const t = throttle();
    const keys: ThrottleKey[] = [['account', 'reset-email:a@example.com']];
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await t.count(keys));
    expect(answers.map((a) => a.counts[0])).toEqual([1, 2, 3, 4, 4]);
    expect(answers.map((a) => a.retryAfter > 0)).toEqual([false, false, false, true, true]);
  });
});
