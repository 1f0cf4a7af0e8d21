import type { Knex } from 'knex';

/**
 * Failed-password counters (per account and per client IP) that survive restarts and are
 * shared by every process on the database, and the security audit log.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('auth_failures', (t) => {
    /** 'account' (user id, or the login typed for unknown users) or 'ip'. */
    t.string('scope', 16).notNullable();
    t.string('key', 320).notNullable();
    t.integer('failures').notNullable();
    t.bigInteger('window_start').notNullable();
    t.bigInteger('locked_until').nullable();
    t.primary(['scope', 'key']);
    t.index(['window_start'], 'auth_failures_window_start');
  });

  await knex.schema.createTable('audit_events', (t) => {
    t.increments('id').primary();
    t.bigInteger('at').notNullable();
    /** Dotted name, e.g. login.failure, client.secret_rotated. */
    t.string('event', 64).notNullable();
    t.integer('actor_user_id').nullable();
    /** Who acted, in words: a username, a client id, "cli", "anonymous". */
    t.string('actor', 255).notNullable();
    t.string('ip', 64).nullable();
    t.string('target_type', 32).nullable();
    t.string('target_id', 255).nullable();
    /** Extra facts as JSON; never a password, secret or token. */
    t.text('details').nullable();
    t.index(['at'], 'audit_events_at');
    t.index(['event'], 'audit_events_event');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('audit_events');
  await knex.schema.dropTableIfExists('auth_failures');
}
