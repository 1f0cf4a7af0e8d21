import type { Knex } from 'knex';

/**
 * Password checks in flight, apart from the failures they may become: `pending` is how many
 * checks of a key have started and not yet ended, so that a key admits a new check only while
 * `failures + pending` is below its limit (wrong guesses lock exactly at the limit however
 * many run at once) and a right password only ever holds a slot for the time of its check.
 * `pending_until` is when the pending count stops counting: a process that died mid-check
 * cannot leave its slots taken for good.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('auth_failures', (t) => {
    t.integer('pending').notNullable().defaultTo(0);
    t.bigInteger('pending_until').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('auth_failures', (t) => {
    t.dropColumn('pending_until');
    t.dropColumn('pending');
  });
}
