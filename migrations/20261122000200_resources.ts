import type { Knex } from 'knex';

/**
 * API resources (RFC 8707 resource indicators): the audiences Latchkey issues access tokens
 * for, the scopes each one offers, and how its tokens look (RFC 9068 JWT or opaque) and how
 * long they live. Latchkey's own REST API is built in and has no row.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('resources', (t) => {
    t.increments('id').primary();
    /** The resource indicator, exactly as clients send it in `resource` and as tokens carry it in `aud`. */
    t.string('identifier', 512).notNullable();
    /** Shown on the consent page; at most 255 characters when given, else the identifier. */
    t.string('name', 512).notNullable();
    /** The scopes this resource offers, as a JSON array of strings. */
    t.text('scopes').notNullable();
    /** Access token lifetime in seconds. */
    t.integer('access_token_ttl').notNullable();
    /** 'jwt' (RFC 9068, verifiable offline) or 'opaque' (checked by introspection). */
    t.string('access_token_format', 16).notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.unique(['identifier'], { indexName: 'resources_identifier_unique' });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('resources');
}
