import type { Knex } from 'knex';

/** Connections of the database pool by state, for the metrics gauge; undefined before the pool exists. */
export interface PoolStats {
  used: number;
  free: number;
  pending: number;
}

export function poolStats(knex: Knex): PoolStats | undefined {
  const pool = (knex.client as { pool?: { numUsed(): number; numFree(): number; numPendingAcquires(): number } }).pool;
  return pool ? { used: pool.numUsed(), free: pool.numFree(), pending: pool.numPendingAcquires() } : undefined;
}
