import type { Knex } from 'knex';

/**
 * Most rows leave grant_id, uid, user_code and account_id empty (client-credentials tokens
 * have none of them; only sessions and interactions have a uid; user_code only the device
 * flow): index only the rows that have a value, so inserting a token does not update four
 * indexes with NULL keys. Lookups (`col = ?`) imply `col IS NOT NULL`, so both SQLite and
 * PostgreSQL still use these indexes.
 */
const PARTIAL = ['grant_id', 'uid', 'user_code', 'account_id'] as const;

export async function up(knex: Knex): Promise<void> {
  for (const column of PARTIAL) {
    await knex.raw(`DROP INDEX IF EXISTS oidc_payloads_${column}`);
    await knex.raw(`CREATE INDEX oidc_payloads_${column} ON oidc_payloads (${column}) WHERE ${column} IS NOT NULL`);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const column of PARTIAL) {
    await knex.raw(`DROP INDEX IF EXISTS oidc_payloads_${column}`);
    await knex.raw(`CREATE INDEX oidc_payloads_${column} ON oidc_payloads (${column})`);
  }
}
