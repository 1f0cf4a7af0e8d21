import type { Knex } from 'knex';

/** The root key (base64url) of one purpose in `encryption_keys` (made by a migration), if present. */
export async function findEncryptionKey(knex: Knex, purpose: string): Promise<string | undefined> {
  const row = (await knex('encryption_keys').where({ purpose }).first('secret')) as { secret: string } | undefined;
  return row?.secret;
}
