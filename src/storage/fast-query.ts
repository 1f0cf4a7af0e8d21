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
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<unknown> | unknown;
}

interface TarnPool {
  numUsed(): number;
  numPendingAcquires(): number;
  /** tarn's idle resources (a protected field; read, never changed here). */
  free?: Array<{ resource: unknown }>;
}

const statements = new WeakMap<object, Map<string, SqliteStatement>>();

/**
 * SQLite's single pooled connection when nobody holds it or waits for it. better-sqlite3 runs a
 * statement synchronously, so nothing can interleave with it: using the idle connection
 * directly is what acquire + release would do, without two promise hops through the pool.
 * While a Knex transaction holds the connection this returns undefined and the query queues.
 */
function idleSqliteConnection(client: PoolClient): SqliteConnection | undefined {
  const pool = (client as unknown as { pool?: TarnPool }).pool;
  if (!pool || pool.numUsed() !== 0 || pool.numPendingAcquires() !== 0) return undefined;
  const connection = pool.free?.[0]?.resource as (SqliteConnection & { open?: boolean }) | undefined;
  return connection?.open ? connection : undefined;
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
    const idle = idleSqliteConnection(client);
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
