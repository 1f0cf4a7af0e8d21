import type { Knex } from 'knex';

/**
 * Refresh JWTs of the REST API (/api/token/): one row per token so a refresh token works
 * once, and a family id so that replaying a used one revokes every token of that login.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('api_refresh_tokens', (t) => {
    t.string('jti', 64).primary();
    t.integer('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.string('family_id', 64).notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.bigInteger('used_at').nullable();
    t.index(['user_id'], 'api_refresh_tokens_user_id');
    t.index(['family_id'], 'api_refresh_tokens_family_id');
    t.index(['expires_at'], 'api_refresh_tokens_expires_at');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('api_refresh_tokens');
}
