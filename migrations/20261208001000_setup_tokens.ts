import type { Knex } from 'knex';

/**
 * One-time links for creating the first superuser in the browser (printed in the server's
 * log while there is none). Only the SHA-256 of a token is stored, as for email tokens: a
 * copy of the database cannot be used to create an administrator. Several processes on one
 * PostgreSQL each print their own link; any of them works once, and none once a superuser
 * exists.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('setup_tokens', (t) => {
    t.increments('id').primary();
    /** Hex SHA-256 of the random token in the link. */
    t.string('token_hash', 64).notNullable().unique('setup_tokens_token_hash');
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    /** Set while a request holds the token (creating the superuser) and for good once it did. */
    t.bigInteger('used_at').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('setup_tokens');
}
