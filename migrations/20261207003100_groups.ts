import type { Knex } from 'knex';

/**
 * Groups of accounts, as Django's auth_group: a name, the permissions it stands for (Django's
 * `app_label.codename`, kept as text for the applications that read them) and its members.
 * A member or group that is deleted takes its memberships with it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('groups', (t) => {
    t.increments('id').primary();
    t.string('name', 150).notNullable().unique('groups_name_unique');
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
  });
  await knex.schema.createTable('group_permissions', (t) => {
    t.integer('group_id').unsigned().notNullable().references('id').inTable('groups').onDelete('CASCADE');
    t.string('permission', 255).notNullable();
    t.primary(['group_id', 'permission']);
  });
  await knex.schema.createTable('user_groups', (t) => {
    t.integer('user_id').unsigned().notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.integer('group_id').unsigned().notNullable().references('id').inTable('groups').onDelete('CASCADE');
    t.primary(['user_id', 'group_id']);
    t.index(['group_id'], 'user_groups_group_id');
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['user_groups', 'group_permissions', 'groups']) await knex.schema.dropTableIfExists(table);
}
