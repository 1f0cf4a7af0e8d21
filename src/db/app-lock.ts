import type { Knex } from 'knex';

/**
 * Runs `fn` in a transaction that first takes a named row lock, so that processes sharing
 * the database (PostgreSQL, or one SQLite file) run it one at a time. The lock is a write,
 * which makes SQLite take its write lock up front (waiting on busy_timeout) and PostgreSQL
 * block the second writer on the row until the first commits.
 */
export async function withAppLock<T>(knex: Knex, name: string, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  return knex.transaction(async (trx) => {
    await trx('app_locks').insert({ name, taken_at: Date.now() }).onConflict('name').merge(['taken_at']);
    return fn(trx);
  });
}
