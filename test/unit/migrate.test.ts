import type { Knex } from 'knex';
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/storage/knex.js';
import { migrations } from '../../migrations/index.js';
import { migrateLatest, pendingMigrations } from '../../src/storage/migrate.js';
import { freshDatabase, type TestDatabase } from '../helpers/database.js';
import { BACKENDS } from '../helpers/env.js';

/** Every migration, oldest first, as the runner must apply them. */
const ALL = migrations.map((m) => m.name);
const TABLES = ['users', 'clients', 'oidc_payloads', 'signing_keys', 'cookie_keys', 'app_locks', 'api_refresh_tokens', 'email_tokens'];

describe.each(BACKENDS)('migrations (%s)', (backend) => {
  let db: TestDatabase;
  /** Every Knex instance a test opened; all destroyed afterwards. */
  let opened: Knex[];

  const open = () => {
    const knex = openDatabase(loadConfig({ DATABASE_URL: db.url }).database);
    opened.push(knex);
    return knex;
  };

  const tablesPresent = async (knex: Knex) => {
    const present: string[] = [];
    for (const table of TABLES) if (await knex.schema.hasTable(table)) present.push(table);
    return present;
  };

  const appliedRows = async (knex: Knex) => (await knex('knex_migrations').orderBy('id').pluck('name')) as string[];

  beforeEach(async () => {
    db = await freshDatabase(backend);
    opened = [];
  });

  afterEach(async () => {
    for (const knex of opened) await knex.destroy();
    await db?.drop();
  });

  it('applies the initial migration to a fresh database and names it', async () => {
    const knex = open();
    expect(await tablesPresent(knex)).toEqual([]);
    expect(await pendingMigrations(knex)).toEqual(ALL);

    expect(await migrateLatest(knex)).toEqual(ALL);
    expect(await tablesPresent(knex)).toEqual(TABLES);
    expect(await appliedRows(knex)).toEqual(ALL);
    expect(await pendingMigrations(knex)).toEqual([]);
  });

  it('applies nothing the second time', async () => {
    const knex = open();
    await migrateLatest(knex);
    expect(await migrateLatest(knex)).toEqual([]);
    expect(await appliedRows(knex)).toEqual(ALL);
  });

  it('sees migrations applied by another instance', async () => {
    await migrateLatest(open());
    const later = open();
    expect(await pendingMigrations(later)).toEqual([]);
    expect(await migrateLatest(later)).toEqual([]);
  });

  // Two processes booting on one empty database. Without serialisation the loser fails with
  // "table already exists" or a held knex migration lock, and the server crashes on start.
  it('lets two instances migrate the same fresh database at once', async () => {
    const [a, b] = [open(), open()];
    const results = await Promise.allSettled([migrateLatest(a), migrateLatest(b)]);
    expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(['ok', 'ok']);

    // Exactly one of them applied the migration; the other found it done.
    const applied = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
    expect(applied).toEqual(ALL);
    expect(await appliedRows(a)).toEqual(ALL);
    expect(await tablesPresent(b)).toEqual(TABLES);
    expect(await pendingMigrations(a)).toEqual([]);
    expect(await pendingMigrations(b)).toEqual([]);
    // knex's own migration lock was released, so a later run is not blocked.
    expect(await migrateLatest(a)).toEqual([]);
  });
});
