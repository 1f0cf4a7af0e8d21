import { createHash } from 'node:crypto';
import type { Knex } from 'knex';

/**
 * oidc_payloads stops holding bearer secrets (src/oidc/stored-ids.ts says which and why):
 * each row of a model whose id is a secret is re-keyed by the SHA-256 (hex) of its id and
 * loses the `jti` (the id again) from its payload; a device code's user code becomes its
 * digest, in the column and out of the payload; an Interaction's references to a session
 * cookie, a device code and a pushed request become the digests those rows are now stored
 * under, and its uid leaves its `returnTo`. Tokens, codes and sessions in flight keep working: the adapter hashes what is
 * presented and finds these rows. Rows also get `created_at`, the order lookups by uid and
 * user code pick the newest by (existing rows: 0, older than any new one).
 *
 * Written out here rather than imported, so this migration keeps doing what it did when the
 * adapter changes. Not reversible: the secrets are gone (down drops only the column).
 */
const SECRET_ID_MODELS = [
  'AccessToken',
  'AuthorizationCode',
  'BackchannelAuthenticationRequest',
  'ClientCredentials',
  'DeviceCode',
  'InitialAccessToken',
  'Interaction',
  'PreAuthorizedCode',
  'PushedAuthorizationRequest',
  'RefreshToken',
  'RegistrationAccessToken',
  'Session',
];

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex');

interface Row {
  model: string;
  id: string;
  payload: string;
  user_code: string | null;
}

type Payload = Record<string, unknown>;

/**
 * The Interaction payload with its references to other rows as their new stored ids, and its
 * own uid out of `returnTo` (the adapter puts back the uid it is asked for).
 */
function interactionPayload(uid: string, payload: Payload): Payload {
  if (typeof payload['returnTo'] === 'string') payload['returnTo'] = payload['returnTo'].replaceAll(uid, '{uid}');
  const session = payload['session'];
  if (session && typeof session === 'object' && typeof (session as Payload)['cookie'] === 'string') {
    (session as Payload)['cookie'] = digest((session as Payload)['cookie'] as string);
  }
  for (const key of ['deviceCode', 'parJti']) {
    if (typeof payload[key] === 'string') payload[key] = digest(payload[key] as string);
  }
  return payload;
}

const BATCH = 500;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('oidc_payloads', (t) => {
    t.bigInteger('created_at').notNullable().defaultTo(0);
  });

  // Knex runs each migration in a transaction: all rows change, or none. The ids are read
  // first: a re-keyed row must not come up again in a scan of the rows still to do.
  for (const model of SECRET_ID_MODELS) {
    const ids = (await knex('oidc_payloads').where({ model }).pluck('id')) as string[];
    for (let start = 0; start < ids.length; start += BATCH) {
      const rows = (await knex('oidc_payloads')
        .where({ model })
        .whereIn('id', ids.slice(start, start + BATCH))
        .select('model', 'id', 'payload', 'user_code')) as Row[];
      for (const row of rows) {
        const payload = JSON.parse(row.payload) as Payload;
        if (model === 'Interaction') interactionPayload(row.id, payload);
        delete payload['jti'];
        delete payload['userCode'];
        await knex('oidc_payloads')
          .where({ model, id: row.id })
          .update({ id: digest(row.id), payload: JSON.stringify(payload), user_code: row.user_code === null ? null : digest(row.user_code) });
      }
    }
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('oidc_payloads', (t) => {
    t.dropColumn('created_at');
  });
}
