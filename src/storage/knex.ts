import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import type { DatabaseConfig } from '../config.js';
import { trackSqliteConnection } from './fast-query.js';

// Our timestamps are epoch milliseconds in BIGINT columns and counts are BIGINT too; both fit
// a JavaScript number, so read int8 as a number instead of pg's default string.
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));

/** Opens a Knex pool for SQLite (better-sqlite3) or PostgreSQL (pg). */
export function openDatabase(database: DatabaseConfig): Knex {
  if (database.client === 'pg') {
    return knexFactory({
      client: 'pg',
      connection: database.connectionString,
      pool: { min: 0, max: 10 },
    });
  }
  if (database.filename !== ':memory:') {
    fs.mkdirSync(path.dirname(database.filename), { recursive: true });
  }
  const tracked = trackSqliteConnection();
  const knex = knexFactory({
    client: 'better-sqlite3',
    connection: { filename: database.filename },
    useNullAsDefault: true,
    // better-sqlite3 is synchronous: one connection serialises work without lock contention
    // inside the process; WAL plus busy_timeout lets other processes (CLI, a second server)
    // share the file.
    pool: {
      min: 1,
      max: 1,
      afterCreate(connection: { pragma(sql: string): unknown }, done: (err: Error | null, conn: unknown) => void) {
        try {
          connection.pragma('journal_mode = WAL');
          connection.pragma('busy_timeout = 5000');
          connection.pragma('foreign_keys = ON');
          connection.pragma('synchronous = NORMAL');
          tracked.created(connection);
          done(null, connection);
        } catch (error) {
          done(error as Error, connection);
        }
      },
    },
  });
  return tracked.attach(knex);
}

/** True when the database answers a trivial query. */
export async function databaseAnswers(knex: Knex): Promise<boolean> {
  try {
    await knex.raw('select 1');
    return true;
  } catch {
    return false;
  }
}

/** Number of rows changed by an UPDATE/DELETE, whatever the driver returns. */
export function affectedRows(result: unknown): number {
  return typeof result === 'number' ? result : 0;
}
