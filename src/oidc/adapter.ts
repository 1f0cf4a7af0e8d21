import type { Knex } from 'knex';
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import { fastQuery } from '../storage/fast-query.js';

const UPSERT = `insert into oidc_payloads (model, id, payload, grant_id, uid, user_code, account_id, client_id, expires_at, consumed_at)
  values (?, ?, ?, ?, ?, ?, ?, ?, ?, null)
  on conflict (model, id) do update set payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid,
    user_code = excluded.user_code, account_id = excluded.account_id, client_id = excluded.client_id, expires_at = excluded.expires_at`;
const FIND_BY: Record<string, string> = {
  id: 'select payload, expires_at, consumed_at from oidc_payloads where model = ? and id = ? limit 1',
  uid: 'select payload, expires_at, consumed_at from oidc_payloads where model = ? and uid = ? limit 1',
  user_code: 'select payload, expires_at, consumed_at from oidc_payloads where model = ? and user_code = ? limit 1',
};

/** Models whose consumption redeems a grant: losing a consume race is a replay. */
const GRANT_SOURCES = new Set([
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

interface PayloadRow {
  payload: string;
  expires_at: number | null;
  consumed_at: number | null;
}

function str(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
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

/**
 * node-oidc-provider storage on Knex: one table for every model, keyed by (model, id), with
 * the lookup columns the library queries (grant_id, uid, user_code) and the ones we need to
 * revoke by user or client (account_id, client_id).
 */
export class KnexAdapter implements Adapter {
  readonly #knex: Knex;
  readonly #model: string;

  constructor(knex: Knex, model: string) {
    this.#knex = knex;
    this.#model = model;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const row = {
      model: this.#model,
      id,
      payload: JSON.stringify(payload),
      grant_id: str(payload.grantId),
      uid: str(payload.uid),
      user_code: str(payload.userCode),
      account_id: str(payload.accountId),
      client_id: str(payload.clientId),
      expires_at: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : null,
    };
    await fastQuery(
      this.#knex,
      UPSERT,
      [row.model, row.id, row.payload, row.grant_id, row.uid, row.user_code, row.account_id, row.client_id, row.expires_at],
      'run',
    );
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.#findBy({ id });
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.#findBy({ uid });
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.#findBy({ user_code: userCode });
  }

  /**
   * Marks the row consumed only if nobody did before (one atomic UPDATE). The library checked
   * `consumed` on a copy it read earlier, so two parallel redemptions both get here: exactly
   * one UPDATE changes a row; the other caller gets invalid_grant and the grant is revoked.
   */
  async consume(id: string): Promise<void> {
    const changed = await fastQuery(
      this.#knex,
      'update oidc_payloads set consumed_at = ? where model = ? and id = ? and consumed_at is null',
      [Date.now(), this.#model, id],
      'run',
    );
    if (changed !== 1 && this.#model === 'PushedAuthorizationRequest') {
      // RFC 9126: a request_uri answers once, also when two completions race.
      throw new errors.InvalidRequestUri('request_uri is invalid, expired, or was already used');
    }
    if (changed === 1 || !GRANT_SOURCES.has(this.#model)) return;
    const row = await this.#knex('oidc_payloads').where({ model: this.#model, id }).first('grant_id');
    if (row?.grant_id) await revokeGrant(this.#knex, row.grant_id as string);
    throw new errors.InvalidGrant(`${this.#model} already consumed`);
  }

  async destroy(id: string): Promise<void> {
    await fastQuery(this.#knex, 'delete from oidc_payloads where model = ? and id = ?', [this.#model, id], 'run');
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.#knex('oidc_payloads').where({ model: this.#model, grant_id: grantId }).delete();
  }

  async #findBy(where: Record<string, string>): Promise<AdapterPayload | undefined> {
    const [column, value] = Object.entries(where)[0]!;
    const row = (await fastQuery(this.#knex, FIND_BY[column]!, [this.#model, value], 'first')) as PayloadRow | undefined;
    if (!row) return undefined;
    if (row.expires_at !== null && Number(row.expires_at) <= Date.now()) return undefined;
    const payload = JSON.parse(row.payload) as AdapterPayload;
    return row.consumed_at === null ? payload : { ...payload, consumed: Math.floor(Number(row.consumed_at) / 1000) };
  }
}

const CLAIM_ONCE = `insert into oidc_payloads (model, id, payload, grant_id, uid, user_code, account_id, client_id, expires_at, consumed_at)
  values (?, ?, ?, null, null, null, null, null, ?, null)
  on conflict (model, id) do update set payload = excluded.payload, expires_at = excluded.expires_at, consumed_at = null
  where oidc_payloads.expires_at is not null and oidc_payloads.expires_at <= ?`;

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
