import type { Knex } from 'knex';

/**
 * `users.auth_stamp`: a random value the users repository replaces whenever the password hash
 * is written or the account is deactivated. The REST API's JWTs carry the stamp they were
 * issued under and are refused once it changed, so a stolen or stale token dies with the
 * password (and does not come back when the account is reactivated). Existing rows start
 * with the empty stamp, which is what tokens issued before this migration (they carry no
 * stamp) are compared with.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.string('auth_stamp', 32).notNullable().defaultTo('');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('auth_stamp');
  });
}
