import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';

/**
 * Two-factor authentication (TOTP, RFC 6238) and single-use recovery codes.
 *
 * - `two_factor`: one row per user who started enrollment. The TOTP secret is stored
 *   encrypted (AES-256-GCM, see src/accounts/secret-box.ts); `enabled_at` is NULL until the
 *   user confirmed a code. `last_used_step` is the TOTP time step of the last accepted code:
 *   a code is accepted only for a later step, so it cannot be replayed within its window.
 * - `two_factor_recovery_codes`: only the SHA-256 of each code (they carry 100 random bits,
 *   so a fast hash is enough); `used_at` makes each one single-use.
 * - `encryption_keys`: data-encryption keys by purpose, made here once. The signing and
 *   cookie keys rotate, so nothing stored for years may depend on them.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('encryption_keys', (t) => {
    t.string('purpose', 64).primary();
    /** 32 random bytes, base64url. */
    t.string('secret', 64).notNullable();
    t.bigInteger('created_at').notNullable();
  });
  await knex('encryption_keys').insert({ purpose: 'two_factor', secret: randomBytes(32).toString('base64url'), created_at: Date.now() });

  await knex.schema.createTable('two_factor', (t) => {
    t.integer('user_id').primary().references('id').inTable('users').onDelete('CASCADE');
    /** The TOTP secret sealed with the 'two_factor' key, bound to user_id. */
    t.text('secret_sealed').notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('enabled_at').nullable();
    t.bigInteger('last_used_step').nullable();
  });

  await knex.schema.createTable('two_factor_recovery_codes', (t) => {
    t.increments('id').primary();
    t.integer('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    /** Hex SHA-256 of the normalised code. */
    t.string('code_hash', 64).notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('used_at').nullable();
    t.unique(['user_id', 'code_hash'], { indexName: 'two_factor_recovery_codes_user_code' });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('two_factor_recovery_codes');
  await knex.schema.dropTableIfExists('two_factor');
  await knex.schema.dropTableIfExists('encryption_keys');
}
