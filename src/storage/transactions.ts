import type { Knex } from 'knex';

/**
 * Runs `fn` in one transaction and commits what it wrote, or, with `rollback`, undoes it all
 * after it returned (a dry run: the same work and the same answer, nothing kept). Rolled back
 * too when `fn` throws.
 */
export async function inTransaction<T>(knex: Knex, fn: (trx: Knex.Transaction) => Promise<T>, { rollback = false } = {}): Promise<T> {
  const trx = await knex.transaction();
  try {
    const result = await fn(trx);
    if (rollback) await trx.rollback();
    else await trx.commit();
    return result;
  } catch (error) {
    if (!trx.isCompleted()) await trx.rollback();
    throw error;
  }
}

/**
 * A savepoint inside `trx`: when `fn` throws, what it wrote is undone and the enclosing
 * transaction goes on (one bad row of an import does not spoil the others).
 */
export function inSavepoint<T>(trx: Knex.Transaction, fn: (savepoint: Knex.Transaction) => Promise<T>): Promise<T> {
  return trx.transaction(fn);
}
