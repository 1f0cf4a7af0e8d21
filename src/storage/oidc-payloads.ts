import type { Knex } from 'knex';
import { fastQuery } from './fast-query.js';

/**
 * SQL for `oidc_payloads`: node-oidc-provider's storage (one table for every model, keyed by
 * (model, id), with the lookup columns the library queries: grant_id, uid, user_code, and the
 * ones we revoke by: account_id, client_id), single-use claims, revocation, sweeping and the
 * self-service listings. Ids and user codes arrive here as the adapter stores them (digests
 * for bearer secrets, src/oidc/stored-ids.ts); this file never sees a secret. `expires_at`
 * is when a row may go, which the adapter sets past the token's own `exp`.
 */

// `created_at` is set once, when a row is first written: "newest" for the lookups below. A
// payload without a user code (a DeviceCode the library found by its id and saves again)
// keeps the one its row has: the library cannot hand back a user code it never got from us.
const UPSERT = `insert into oidc_payloads (model, id, payload, grant_id, uid, user_code, account_id, client_id, expires_at, consumed_at, created_at)
  values (?, ?, ?, ?, ?, ?, ?, ?, ?, null, ?)
  on conflict (model, id) do update set payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid,
    user_code = coalesce(excluded.user_code, oidc_payloads.user_code), account_id = excluded.account_id, client_id = excluded.client_id,
    expires_at = excluded.expires_at`;
// Expiry is checked in SQL, before the row is picked: an expired, unswept row must not hide a
// live one with the same uid or user code. Of several live ones the newest wins, by a total
// order (created_at, then id) so both databases pick the same row.
const LIVE_ROW = 'select id, payload, consumed_at from oidc_payloads where model = ? and';
const LIVE_ORDER = 'and (expires_at is null or expires_at > ?) order by created_at desc, id desc limit 1';
const FIND_BY: Record<PayloadLookup, string> = {
  id: `${LIVE_ROW} id = ? ${LIVE_ORDER}`,
  uid: `${LIVE_ROW} uid = ? ${LIVE_ORDER}`,
  user_code: `${LIVE_ROW} user_code = ? ${LIVE_ORDER}`,
};
const CONSUME = 'update oidc_payloads set consumed_at = ? where model = ? and id = ? and consumed_at is null';
const DESTROY = 'delete from oidc_payloads where model = ? and id = ?';
const CLAIM_ONCE = `insert into oidc_payloads (model, id, payload, grant_id, uid, user_code, account_id, client_id, expires_at, consumed_at)
  values (?, ?, ?, null, null, null, null, null, ?, null)
  on conflict (model, id) do update set payload = excluded.payload, expires_at = excluded.expires_at, consumed_at = null
  where oidc_payloads.expires_at is not null and oidc_payloads.expires_at <= ?`;

/** The columns a payload is found by. */
export type PayloadLookup = 'id' | 'uid' | 'user_code';

/** A stored payload that has not expired. */
export interface LivePayload {
  /** The row's id column (what the library's id is stored as). */
  id: string;
  payload: Record<string, unknown>;
  /** When it was consumed (epoch ms), null while it is not. */
  consumedAt: number | null;
}

interface PayloadRow {
  id: string;
  payload: string;
  consumed_at: number | null;
}

function str(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** One row as the adapter writes it. */
export interface PayloadWrite {
  model: string;
  /** The id column: the library's id, or its digest for models whose ids are secrets. */
  id: string;
  payload: Record<string, unknown>;
  /** What goes in the user_code column (a digest); null keeps the row's current one. */
  userCode: string | null;
  /** Epoch ms, null for never. */
  expiresAt: number | null;
}

/** Stores (or replaces) one payload; the other lookup columns come from the payload. */
export async function upsertPayload(knex: Knex, row: PayloadWrite, now = Date.now()): Promise<void> {
  const { payload } = row;
  await fastQuery(
    knex,
    UPSERT,
    [
      row.model,
      row.id,
      JSON.stringify(payload),
      str(payload['grantId']),
      str(payload['uid']),
      row.userCode,
      str(payload['accountId']),
      str(payload['clientId']),
      row.expiresAt,
      now,
    ],
    'run',
  );
}

/** The newest payload of `model` whose `column` is `value` and that has not expired. */
export async function findPayload(knex: Knex, model: string, column: PayloadLookup, value: string, now = Date.now()): Promise<LivePayload | undefined> {
  if (value === '') return undefined;
  const row = (await fastQuery(knex, FIND_BY[column], [model, value, now], 'first')) as PayloadRow | undefined;
  if (!row) return undefined;
  return {
    id: row.id,
    payload: JSON.parse(row.payload) as Record<string, unknown>,
    consumedAt: row.consumed_at === null ? null : Number(row.consumed_at),
  };
}

/**
 * Marks the row consumed only if nobody did before (one atomic UPDATE, `consumed_at is null`):
 * of two parallel callers exactly one changes the row. Returns the number of rows changed.
 */
export async function consumePayload(knex: Knex, model: string, id: string, now = Date.now()): Promise<number> {
  return fastQuery(knex, CONSUME, [now, model, id], 'run');
}

/** The grant a payload was issued under, if it names one. */
export async function grantIdOf(knex: Knex, model: string, id: string): Promise<string | undefined> {
  const row = await knex('oidc_payloads').where({ model, id }).first('grant_id');
  return row?.grant_id ? (row.grant_id as string) : undefined;
}

/** Deletes one payload. */
export async function destroyPayload(knex: Knex, model: string, id: string): Promise<void> {
  await fastQuery(knex, DESTROY, [model, id], 'run');
}

/** Deletes the payloads of one model issued under a grant. */
export async function revokeModelByGrantId(knex: Knex, model: string, grantId: string): Promise<void> {
  await knex('oidc_payloads').where({ model, grant_id: grantId }).delete();
}

/**
 * Deletes every artefact of a grant (tokens, codes) and the grant itself. Used when a code
 * or refresh token is redeemed twice at the same moment: the loser cannot know which of the
 * two callers is legitimate, so, as for a sequential replay, the whole grant goes.
 */
export async function revokeGrant(knex: Knex, grantId: string): Promise<void> {
  await knex('oidc_payloads')
    .where({ grant_id: grantId })
    .orWhere((q) => q.where({ model: 'Grant', id: grantId }))
    .delete();
}

/** Deletes every token and code issued under a grant, and leaves the grant. */
export async function revokeGrantTokens(knex: Knex, grantId: string): Promise<void> {
  await knex('oidc_payloads').where({ grant_id: grantId }).delete();
}

/**
 * Records `id` under `model` until `expiresAt` (ms) unless it is already recorded: true for
 * the first caller, false for every later one, in every process on the database (one
 * conditional INSERT, so two simultaneous callers cannot both win). A row that has expired
 * but not yet been swept counts as absent, as it does for `find`. For single-use values such
 * as DPoP proof `jti`s.
 */
export async function claimOnce(knex: Knex, model: string, id: string, expiresAt: number, payload: Record<string, unknown> = {}, now = Date.now()): Promise<boolean> {
  const changed = await fastQuery(knex, CLAIM_ONCE, [model, id, JSON.stringify(payload), expiresAt, now], 'run');
  return changed === 1;
}

/** Deletes expired rows; the library never does. Returns how many went. */
export async function sweepExpired(knex: Knex, now = Date.now()): Promise<number> {
  return knex('oidc_payloads').where('expires_at', '<=', now).delete();
}

/** Removes every session, grant and token of one account (user deleted or deactivated). */
export async function revokeAccount(knex: Knex, accountId: string): Promise<number> {
  return knex('oidc_payloads').where({ account_id: accountId }).delete();
}

/** Deletes every token, code and grant issued to a client. */
export async function revokeClient(knex: Knex, clientId: string): Promise<number> {
  return knex('oidc_payloads').where({ client_id: clientId }).delete();
}

/** Live (not expired) rows of one model for one account, payloads parsed. */
export async function listAccountPayloads(
  knex: Knex,
  model: 'Grant' | 'Session',
  accountId: string,
  now = Date.now(),
): Promise<Array<{ id: string; payload: Record<string, unknown> }>> {
  const rows = (await knex('oidc_payloads')
    .where({ model, account_id: accountId })
    .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', now))
    .select('id', 'payload', 'expires_at')) as Array<{ id: string; payload: string; expires_at: number | null }>;
  return rows.map((row) => ({ id: row.id, payload: JSON.parse(row.payload) as Record<string, unknown> }));
}

/** The payload of one of an account's grants (expired or not), or undefined when it has none by that id. */
export async function findAccountGrant(knex: Knex, accountId: string, grantId: string): Promise<Record<string, unknown> | undefined> {
  const row = await knex('oidc_payloads').where({ model: 'Grant', id: grantId, account_id: accountId }).first('payload');
  return row ? (JSON.parse(String(row.payload)) as Record<string, unknown>) : undefined;
}

/** Deletes one of an account's login sessions by its public uid; returns how many rows went. */
export async function deleteAccountSession(knex: Knex, accountId: string, uid: string): Promise<number> {
  return knex('oidc_payloads').where({ model: 'Session', uid, account_id: accountId }).delete();
}

/**
 * Deletes every row of an account except the session `keep.sessionUid` and the grant
 * `keep.grantId` with what was issued under it (a password change keeps the caller's own).
 */
export async function revokeAccountExcept(knex: Knex, accountId: string, keep: { sessionUid?: string; grantId?: string }): Promise<number> {
  return knex('oidc_payloads')
    .where({ account_id: accountId })
    .andWhere((q) => {
      if (keep.sessionUid) q.whereNot((k) => k.where({ model: 'Session', uid: keep.sessionUid }));
      if (keep.grantId) q.andWhere((k) => k.whereNull('grant_id').orWhereNot('grant_id', keep.grantId!)).andWhereNot((k) => k.where({ model: 'Grant', id: keep.grantId }));
    })
    .delete();
}
