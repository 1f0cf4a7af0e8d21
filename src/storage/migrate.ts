import { setTimeout as sleep } from 'node:timers/promises';
import type { Knex } from 'knex';
import { migrations } from '../../migrations/index.js';

/** Knex migration source over the static list in migrations/index.ts (works from src and dist). */
const source: Knex.MigrationSource<string> = {
  getMigrations: async () => migrations.map((m) => m.name),
  getMigrationName: (name) => name,
  getMigration: async (name) => {
    const found = migrations.find((m) => m.name === name);
    if (!found) throw new Error(`unknown migration ${name}`);
    return found.migration;
  },
};

const MIGRATION_LOCK_KEY = 0x4c4b4d47; // "LKMG": our advisory lock id on PostgreSQL

/**
 * Brings the schema up to date. Safe when several processes boot at once: on PostgreSQL an
 * advisory lock serialises them; on SQLite (one connection per process) a loser of knex's
 * own migration lock waits and retries until the winner has finished.
 * @returns names of the migrations this call applied.
 */
export async function migrateLatest(knex: Knex, { timeoutMs = 60_000 } = {}): Promise<string[]> {
  const config = { migrationSource: source, tableName: 'knex_migrations' };
  if (knex.client.config.client === 'pg') {
    return knex.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(?)', [MIGRATION_LOCK_KEY]);
      const [, applied] = (await knex.migrate.latest(config)) as [number, string[]];
      return applied;
    });
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const [, applied] = (await knex.migrate.latest(config)) as [number, string[]];
      return applied;
    } catch (error) {
      // Another process holds the knex lock, or created the bookkeeping tables under us.
      const message = error instanceof Error ? error.message : String(error);
      const retryable = /locked|already exists|SQLITE_BUSY/i.test(message);
      if (!retryable || Date.now() > deadline) throw error;
      await sleep(100 + Math.floor(Math.random() * 100));
    }
  }
}

/** Names of migrations not yet applied. */
export async function pendingMigrations(knex: Knex): Promise<string[]> {
  const [, pending] = (await knex.migrate.list({ migrationSource: source })) as [unknown, Array<string | { file: string }>];
  return pending.map((p) => (typeof p === 'string' ? p : p.file));
}
