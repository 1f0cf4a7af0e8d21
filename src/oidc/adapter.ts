import type { Knex } from 'knex';
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import { consumePayload, destroyPayload, findPayload, grantIdOf, revokeGrant, revokeModelByGrantId, upsertPayload, type PayloadLookup } from '../storage/oidc-payloads.js';

/** Models whose consumption redeems a grant: losing a consume race is a replay. */
const GRANT_SOURCES = new Set([
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

/**
 * node-oidc-provider storage: the library's Adapter interface for one model, mapped onto the
 * `oidc_payloads` repository (src/storage/oidc-payloads.ts).
 */
export class KnexAdapter implements Adapter {
  readonly #knex: Knex;
  readonly #model: string;

  constructor(knex: Knex, model: string) {
    this.#knex = knex;
    this.#model = model;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    await upsertPayload(this.#knex, this.#model, id, payload, typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : null);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.#findBy('id', id);
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.#findBy('uid', uid);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.#findBy('user_code', userCode);
  }

  /**
   * Marks the row consumed only if nobody did before (one atomic UPDATE). The library checked
   * `consumed` on a copy it read earlier, so two parallel redemptions both get here: exactly
   * one UPDATE changes a row; the other caller gets invalid_grant and the grant is revoked.
   */
  async consume(id: string): Promise<void> {
    const changed = await consumePayload(this.#knex, this.#model, id);
    if (changed !== 1 && this.#model === 'PushedAuthorizationRequest') {
      // RFC 9126: a request_uri answers once, also when two completions race.
      throw new errors.InvalidRequestUri('request_uri is invalid, expired, or was already used');
    }
    if (changed === 1 || !GRANT_SOURCES.has(this.#model)) return;
    const grantId = await grantIdOf(this.#knex, this.#model, id);
    if (grantId) await revokeGrant(this.#knex, grantId);
    throw new errors.InvalidGrant(`${this.#model} already consumed`);
  }

  async destroy(id: string): Promise<void> {
    await destroyPayload(this.#knex, this.#model, id);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await revokeModelByGrantId(this.#knex, this.#model, grantId);
  }

  async #findBy(column: PayloadLookup, value: string): Promise<AdapterPayload | undefined> {
    const found = await findPayload(this.#knex, this.#model, column, value);
    if (!found) return undefined;
    const payload = found.payload as AdapterPayload;
    return found.consumedAt === null ? payload : { ...payload, consumed: Math.floor(found.consumedAt / 1000) };
  }
}
