import type { Knex } from 'knex';

/**
 * An address a person asked to change to is kept apart until they verify it: login by
 * email, password reset and notices keep using `email` meanwhile, so a session or token
 * that is not the person cannot move the account's recovery to another mailbox.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.string('pending_email', 254).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('pending_email');
  });
}
