import type { Knex } from 'knex';

/**
 * The core schema: accounts, OAuth clients, every OIDC artefact node-oidc-provider stores
 * (one table, keyed by model and id), signing and cookie keys, and a lock table.
 * Timestamps are epoch milliseconds in BIGINT columns so that SQLite and PostgreSQL
 * compare and sort them the same way.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (t) => {
    t.increments('id').primary();
    t.string('username', 150).notNullable();
    t.string('email', 254).nullable();
    t.string('password_hash', 255).notNullable();
    t.string('first_name', 150).notNullable().defaultTo('');
    t.string('last_name', 150).notNullable().defaultTo('');
    t.boolean('is_active').notNullable().defaultTo(true);
    t.boolean('is_staff').notNullable().defaultTo(false);
    t.boolean('is_superuser').notNullable().defaultTo(false);
    t.boolean('email_verified').notNullable().defaultTo(false);
    t.bigInteger('date_joined').notNullable();
    t.bigInteger('last_login').nullable();
    t.bigInteger('updated_at').notNullable();
  });
  // Usernames keep their case for display but must be unique ignoring it, so "Alice" cannot
  // impersonate "alice"; emails are stored lower-cased. NULL emails do not collide.
  await knex.raw('CREATE UNIQUE INDEX users_username_lower_unique ON users (lower(username))');
  await knex.raw('CREATE UNIQUE INDEX users_email_unique ON users (email)');

  await knex.schema.createTable('clients', (t) => {
    t.string('client_id', 128).primary();
    t.string('name', 255).notNullable();
    /** SHA-256 of the secret; NULL for public clients. */
    t.string('client_secret_hash', 128).nullable();
    /** Provider client metadata (redirect_uris, grant_types, ...) as JSON, without the secret. */
    t.text('metadata').notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
  });

  await knex.schema.createTable('oidc_payloads', (t) => {
    t.string('model', 64).notNullable();
    t.string('id', 255).notNullable();
    t.text('payload').notNullable();
    t.string('grant_id', 255).nullable();
    t.string('uid', 255).nullable();
    t.string('user_code', 255).nullable();
    t.string('account_id', 255).nullable();
    t.string('client_id', 255).nullable();
    t.bigInteger('expires_at').nullable();
    t.bigInteger('consumed_at').nullable();
    t.primary(['model', 'id']);
    t.index(['grant_id'], 'oidc_payloads_grant_id');
    t.index(['uid'], 'oidc_payloads_uid');
    t.index(['user_code'], 'oidc_payloads_user_code');
    t.index(['account_id'], 'oidc_payloads_account_id');
    t.index(['client_id'], 'oidc_payloads_client_id');
    t.index(['expires_at'], 'oidc_payloads_expires_at');
  });

  await knex.schema.createTable('signing_keys', (t) => {
    t.string('kid', 128).primary();
    t.string('alg', 16).notNullable();
    /** 'current' keys sign; 'previous' keys are only published for verification. */
    t.string('status', 16).notNullable();
    t.text('private_jwk').notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('retired_at').nullable();
    /** When a previous key stops being published. */
    t.bigInteger('expires_at').nullable();
    t.index(['status'], 'signing_keys_status');
  });

  await knex.schema.createTable('cookie_keys', (t) => {
    t.increments('id').primary();
    t.string('secret', 255).notNullable();
    t.bigInteger('created_at').notNullable();
  });

  await knex.schema.createTable('app_locks', (t) => {
    t.string('name', 64).primary();
    t.bigInteger('taken_at').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['app_locks', 'cookie_keys', 'signing_keys', 'oidc_payloads', 'clients', 'users']) {
    await knex.schema.dropTableIfExists(table);
  }
}
