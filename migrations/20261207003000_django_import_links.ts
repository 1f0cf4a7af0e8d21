import type { Knex } from 'knex';

/**
 * Which Latchkey row came from which row of a Django site (`import django`), so that running
 * the import again updates what it made instead of adding copies, and tells an account it
 * made from one that was already here. `source_digest`: SHA-256 of the Django password column
 * last copied, so a later run replaces the password only while it is still that copy (never
 * one set or upgraded in Latchkey since).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('django_import_links', (t) => {
    /** 'user' (more kinds follow: clients, groups). */
    t.string('kind', 16).notNullable();
    /** The Django primary key, as text. */
    t.string('source_id', 255).notNullable();
    /** The Latchkey row's key, as text. */
    t.string('target_id', 255).notNullable();
    t.string('source_digest', 64).nullable();
    t.bigInteger('imported_at').notNullable();
    t.primary(['kind', 'source_id']);
    t.index(['kind', 'target_id'], 'django_import_links_target');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('django_import_links');
}
