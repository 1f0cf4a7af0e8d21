import type { Knex } from 'knex';

/**
 * Single-use, expiring tokens sent by email: address verification and password reset. Only
 * the SHA-256 of a token is stored, so a copy of the database cannot be used to verify an
 * address or reset a password. `email` is the address the link went to: a token is honoured
 * only while the account still has that address.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('email_tokens', (t) => {
    t.increments('id').primary();
    /** Hex SHA-256 of the random token in the link. */
    t.string('token_hash', 64).notNullable().unique('email_tokens_token_hash');
    t.integer('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    /** 'verify_email' or 'reset_password'. */
    t.string('purpose', 32).notNullable();
    t.string('email', 254).notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.bigInteger('used_at').nullable();
    t.index(['user_id', 'purpose'], 'email_tokens_user_id_purpose');
    t.index(['expires_at'], 'email_tokens_expires_at');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('email_tokens');
}
