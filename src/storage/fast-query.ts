import type { Knex } from 'knex';

interface SqliteStatement {
  get(...params: unknown[]): unknown;
  run(...params: unknown[]): { changes: number };
}
interface SqliteConnection {
  prepare(sql: string): SqliteStatement;
}
interface PgConnection {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[]; rowCount: number | null }>;
}
interface PoolClient {
  config: { client?: unknown };
  pool?: unknown;
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<unknown> | unknown;
}

/** tarn's public counters. */
interface TarnCounters {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
}

const statements = new WeakMap<object, Map<string, SqliteStatement>>();

type TrackedSqliteConnection = SqliteConnection & { open?: boolean };

/** The connection the SQLite pool of each Knex instance created last (its pool holds one). */
const sqliteConnections = new WeakMap<Knex, { connection?: TrackedSqliteConnection }>();

/**
 * For a SQLite Knex whose pool has one connection: `created` goes into the pool's
 * `afterCreate` hook and records each connection the pool makes; `attach` ties the record to
 * the Knex instance once it exists. fastQuery then reaches the idle connection without a trip
 * through the pool (see idleSqliteConnection). A Knex that is not attached still works, through
 * acquire and release.
 */
export function trackSqliteConnection(): { created(connection: unknown): void; attach(knex: Knex): Knex } {
  const slot: { connection?: TrackedSqliteConnection } = {};
  return {
    created(connection) {
      slot.connection = connection as TrackedSqliteConnection;
    },
    attach(knex) {
      sqliteConnections.set(knex, slot);
      return knex;
    },
  };
}

/**
 * SQLite's single pooled connection when nobody holds it or waits for it. better-sqlite3 runs a
 * statement synchronously, so nothing can interleave with it: using the idle connection
 * directly is what acquire + release would do, without two promise hops through the pool.
 * The connection is the one the pool's afterCreate hook recorded last (a pool of one never
 * holds two; a replaced one is recorded anew); the pool's public counters say it is idle.
 * While a Knex transaction holds the connection this returns undefined and the query queues.
 */
function idleSqliteConnection(knex: Knex, client: PoolClient): SqliteConnection | undefined {
  const connection = sqliteConnections.get(knex)?.connection;
  const pool = client.pool as Partial<TarnCounters> | undefined;
  if (!connection || typeof pool?.numUsed !== 'function' || typeof pool.numFree !== 'function' || typeof pool.numPendingAcquires !== 'function') return undefined;
  if (pool.numUsed() !== 0 || pool.numPendingAcquires() !== 0 || pool.numFree() !== 1) return undefined;
  return connection.open ? connection : undefined;
}

function runSqlite(db: SqliteConnection, sql: string, values: unknown[], mode: 'first' | 'run'): Record<string, unknown> | undefined | number {
  let cache = statements.get(db);
  if (!cache) statements.set(db, (cache = new Map()));
  let statement = cache.get(sql);
  if (!statement) cache.set(sql, (statement = db.prepare(sql)));
  return mode === 'first' ? (statement.get(...values) as Record<string, unknown> | undefined) : statement.run(...values).changes;
}
const pgTexts = new Map<string, { name: string; text: string }>();

/**
 * A fixed SQL statement (`?` placeholders) for the hot paths, on a connection from Knex's own
 * pool (so it still queues behind Knex transactions), prepared once per connection: no query
 * builder, no per-query SQLite prepare; on PostgreSQL a named statement, parsed and planned
 * once per connection. `first` returns the first row, `run` the number of rows changed.
 */
export async function fastQuery(knex: Knex, sql: string, values: unknown[], mode: 'first'): Promise<Record<string, unknown> | undefined>;
export async function fastQuery(knex: Knex, sql: string, values: unknown[], mode: 'run'): Promise<number>;
export async function fastQuery(knex: Knex, sql: string, values: unknown[], mode: 'first' | 'run'): Promise<Record<string, unknown> | undefined | number> {
  const client = knex.client as unknown as PoolClient;
  if (client.config.client !== 'pg') {
    const idle = idleSqliteConnection(knex, client);
    if (idle) return runSqlite(idle, sql, values, mode);
  }
  const connection = await client.acquireConnection();
  try {
    if (client.config.client === 'pg') {
      let named = pgTexts.get(sql);
      if (!named) {
        let n = 0;
        named = { name: `lk_${pgTexts.size}`, text: sql.replace(/\?/g, () => `$${++n}`) };
        pgTexts.set(sql, named);
      }
      const result = await (connection as PgConnection).query({ ...named, values });
      return mode === 'first' ? (result.rows[0] as Record<string, unknown> | undefined) : (result.rowCount ?? 0);
    }
    return runSqlite(connection as SqliteConnection, sql, values, mode);
  } finally {
    await client.releaseConnection(connection);
  }
}
