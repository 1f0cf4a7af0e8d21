/**
 * The expired-row sweeper runs in one process at a time: two sweepers on two Knex pools (as
 * two processes would have) share one database, and the lease in app_locks lets exactly one
 * of them run per interval, while sweepNow (the CLI's cleanup) always runs.
 */
import type { Knex } from 'knex';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLoginThrottle } from '../../src/core/accounts/login-throttle.js';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/storage/knex.js';
import { migrateLatest } from '../../src/storage/migrate.js';
import { poolStats } from '../../src/storage/pool-stats.js';
import { createSweeper, type Sweeper } from '../../src/core/maintenance/sweeper.js';
import { createMetrics, type Metrics } from '../../src/observability/metrics.js';
import { freshDatabase, type TestDatabase } from '../helpers/database.js';
import { BACKENDS } from '../helpers/env.js';

const INTERVAL = 60;
const POLICY = { accountMax: 5, ipMax: 50, windowSeconds: 900, lockoutSeconds: 900 };

interface Instance {
  knex: Knex;
  metrics: Metrics;
  sweeper: Sweeper;
}

/** Current value of an unlabelled counter, read from the instance's registry. */
async function counter(metrics: Metrics, name: string): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values.reduce((total, v) => total + v.value, 0);
}

describe.each(BACKENDS)('sweeper lease (%s)', (backend) => {
  let db: TestDatabase;
  let a: Instance;
  let b: Instance;

  const instance = (): Instance => {
    const knex = openDatabase(loadConfig({ DATABASE_URL: db.url }).database);
    const metrics = createMetrics({ pool: () => poolStats(knex), hashQueue: () => 0 });
    const throttle = createLoginThrottle(knex, POLICY);
    return { knex, metrics, sweeper: createSweeper({ knex, intervalSeconds: INTERVAL, throttle, metrics }) };
  };

  beforeEach(async () => {
    db = await freshDatabase(backend);
    a = instance();
    b = instance();
    await migrateLatest(a.knex);
    await migrateLatest(b.knex);
  });

  afterEach(async () => {
    await a?.knex.destroy();
    await b?.knex.destroy();
    await db?.drop();
  });

  const row = (id: string, expiresAt: number) => ({ model: 'AccessToken', id, payload: '{}', expires_at: expiresAt });
  const ids = async () => ((await a.knex('oidc_payloads').orderBy('id').pluck('id')) as string[]).sort();
  const sweeps = async () => [await counter(a.metrics, 'latchkey_sweeps_total'), await counter(b.metrics, 'latchkey_sweeps_total')];

  /** Both at once; returns which ran (by index) and what each returned. */
  async function race(now: number) {
    const results = await Promise.all([a.sweeper.runIfDue(now), b.sweeper.runIfDue(now)]);
    const ran = results.flatMap((r, i) => (r === undefined ? [] : [i]));
    return { results, ran };
  }

  it('lets exactly one of two concurrent runs win, and the winner deletes the expired rows', async () => {
    await a.knex('oidc_payloads').insert([row('expired', Date.now() - 1000), row('live', Date.now() + 3_600_000)]);
    const now = Date.now();
    const { results, ran } = await race(now);

    expect(ran, `results: ${JSON.stringify(results)}`).toHaveLength(1);
    const winner = ran[0] ?? -1;
    const deleted = results[winner];
    expect(typeof deleted).toBe('number');
    expect(deleted).toBeGreaterThanOrEqual(1);
    expect(results[1 - winner]).toBeUndefined();
    expect(await ids()).toEqual(['live']);

    // Only the winner counted a sweep (and the rows it removed).
    const counts = await sweeps();
    expect(counts[winner]).toBe(1);
    expect(counts[1 - winner]).toBe(0);
    const winnerMetrics = winner === 0 ? a.metrics : b.metrics;
    expect(await counter(winnerMetrics, 'latchkey_swept_rows_total')).toBe(deleted);

    // The lease is one row.
    const leases = await a.knex('app_locks').where({ name: 'sweeper' }).select('taken_at');
    expect(leases).toHaveLength(1);
    expect(Number(leases[0]?.taken_at)).toBe(now);
  });

  it('runs once per interval between them: none at +30 s, one at +60 s, round after round', async () => {
    const start = Date.now();
    expect((await race(start)).ran).toHaveLength(1);

    let expectedRuns = 1;
    for (let round = 1; round <= 5; round++) {
      const base = start + (round - 1) * INTERVAL * 1000;
      const half = await race(base + (INTERVAL / 2) * 1000);
      expect(half.ran, `round ${round}, half an interval after the last run`).toEqual([]);
      expect(half.results).toEqual([undefined, undefined]);

      // An expired row appears between runs; the next due run removes it.
      await a.knex('oidc_payloads').insert(row(`expired-${round}`, Date.now() - 1000));
      const due = await race(base + INTERVAL * 1000);
      expect(due.ran, `round ${round}, a full interval after the last run`).toHaveLength(1);
      expect(due.results[due.ran[0] ?? -1]).toBeGreaterThanOrEqual(1);
      expect(await ids()).toEqual([]);
      expectedRuns += 1;

      const [countA, countB] = await sweeps();
      expect((countA ?? 0) + (countB ?? 0)).toBe(expectedRuns);
    }
  });

  it('a run just before 90% of the interval is refused, just after it is allowed', async () => {
    const start = Date.now();
    expect((await race(start)).ran).toHaveLength(1);
    expect((await race(start + INTERVAL * 900 - 1)).ran).toEqual([]);
    expect((await race(start + INTERVAL * 900)).ran).toHaveLength(1);
  });

  it('sweepNow always runs, on both, whoever holds the lease, and leaves the lease alone', async () => {
    const start = Date.now();
    expect((await race(start)).ran).toHaveLength(1);
    expect(await sweeps()).toEqual(expect.arrayContaining([0, 1]));

    await a.knex('oidc_payloads').insert([row('expired-a', Date.now() - 1000), row('expired-b', Date.now() - 1000)]);
    const [fromA, fromB] = await Promise.all([a.sweeper.sweepNow(), b.sweeper.sweepNow()]);
    expect(typeof fromA).toBe('number');
    expect(typeof fromB).toBe('number');
    expect(fromA + fromB).toBe(2); // each row deleted once, by one of them
    expect(await ids()).toEqual([]);
    const [countA, countB] = await sweeps();
    expect((countA ?? 0) + (countB ?? 0)).toBe(3);
    expect(Math.min(countA ?? 0, countB ?? 0)).toBeGreaterThanOrEqual(1);

    // Nothing to delete is still a run.
    expect(await a.sweeper.sweepNow()).toBe(0);
    expect((await sweeps()).reduce((x, y) => x + y, 0)).toBe(4);

    // sweepNow did not take or renew the lease: the periodic schedule is unchanged.
    expect((await race(start + (INTERVAL / 2) * 1000)).ran).toEqual([]);
    expect((await race(start + INTERVAL * 1000)).ran).toHaveLength(1);
  });
});
