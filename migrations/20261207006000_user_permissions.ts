import type { Knex } from 'knex';

/**
 * Permissions given to one account directly, as Django's `<user table>_user_permissions`
 * (`app_label.codename`, kept as text like the groups' permissions): imported so that
 * nothing a Django site granted is lost. They go with the account.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('user_permissions', (t) => {
    t.integer('user_id').unsigned().notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.string('permission', 255).notNullable();
    t.primary(['user_id', 'permission']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('user_permissions');
}
