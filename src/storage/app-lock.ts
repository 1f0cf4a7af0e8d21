import type { Knex } from 'knex';

/** Tail of the queue of SQLite lock takers per (file, lock name) in this process. */
const sqliteQueues = new Map<string, Promise<void>>();

/**
 * Runs `fn` in a transaction that first takes a named row lock, so that processes sharing
 * the database (PostgreSQL, or one SQLite file) run it one at a time. The lock is a write,
 * which makes SQLite take its write lock up front (waiting on busy_timeout) and PostgreSQL
 * block the second writer on the row until the first commits.
 *
 * Keep `fn` short (no key generation inside): on SQLite the write lock blocks every other
 * writer of the file for as long as it is held.
 */
export async function withAppLock<T>(knex: Knex, name: string, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  const run = () =>
    knex.transaction(async (trx) => {
      await trx('app_locks').insert({ name, taken_at: Date.now() }).onConflict('name').merge(['taken_at']);
      return fn(trx);
    });
  if (knex.client.config.client !== 'better-sqlite3') return run();

  // better-sqlite3 waits for a busy file synchronously (busy_timeout blocks the thread), so two
  // Knex instances of one process on one file would freeze each other: queue them here first.
  const filename = (knex.client.config.connection as { filename?: string } | undefined)?.filename ?? '';
  const key = `${filename}|${name}`;
  const previous = sqliteQueues.get(key) ?? Promise.resolve();
  let release!: () => void;
  const tail = previous.then(() => new Promise<void>((resolve) => (release = resolve)));
  sqliteQueues.set(key, tail);
  await previous;
  try {
    return await run();
  } finally {
    release();
    if (sqliteQueues.get(key) === tail) sqliteQueues.delete(key);
  }
}

/**
 * Claims the lease row `name` in app_locks for `now` when the last claim was taken at or
 * before `cutoff` (or never): one conditional upsert, so of processes claiming at once only
 * one gets it. True when this call got it.
 */
export async function claimLease(knex: Knex, name: string, now: number, cutoff: number): Promise<boolean> {
  const rows = (await knex('app_locks')
    .insert({ name, taken_at: now })
    .onConflict('name')
    .merge({ taken_at: now })
    .where('app_locks.taken_at', '<=', cutoff)
    .returning('name')) as unknown[];
  return rows.length === 1;
}
