import type { Knex } from 'knex';
import Provider, { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import { browserSummary } from '../core/accounts/user-agent.js';
import { consumePayload, destroyPayload, findPayload, grantIdOf, revokeGrant, revokeModelByGrantId, upsertPayload, type LivePayload } from '../storage/oidc-payloads.js';
import { payloadFound, payloadToStore, referenceTo, secretDigest, storedIdOf } from './stored-ids.js';

/** Models whose consumption redeems a grant: losing a consume race is a replay. */
const GRANT_SOURCES = new Set([
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

export interface KnexAdapterOptions {
  /**
   * Seconds a row stays findable after it expires: the provider's clockTolerance, so that the
   * library, which accepts that much skew, can tell an expired token or code from an unknown one.
   */
  clockTolerance: number;
  /**
   * What losing a consume race sets off, for the grant the redeemed row was issued under: the
   * provider's own answer to a replay (revocation, its event, the audit entry). Without one,
   * the grant and everything issued under it are deleted.
   */
  onReplay?: (grantId: string) => Promise<void>;
}

/**
 * A login session as saved by the browser that signed in (or last used it): its browser in
 * words and its IP, from the request the library saves it in (node-oidc-provider runs each
 * request in an AsyncLocalStorage, `Provider.ctx`). The library drops fields it does not
 * know when it loads a session, so every save writes them again from its own request; a save
 * outside a request keeps none.
 */
function withDevice(payload: AdapterPayload): AdapterPayload {
  const ctx = Provider.ctx;
  if (!ctx) return payload;
  // An IPv4 client of a dual-stack socket reads as ::ffff:a.b.c.d: shown as people know it.
  const ip = ctx.ip.replace(/^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/, '$1').slice(0, 64) || null;
  return { ...payload, device: { browser: browserSummary(ctx.get('user-agent') || undefined), ip } };
}

/**
 * node-oidc-provider storage: the library's Adapter interface for one model, mapped onto the
 * `oidc_payloads` repository (src/storage/oidc-payloads.ts). Bearer secrets are stored as
 * digests (src/oidc/stored-ids.ts): ids are hashed on the way in and on every lookup, and
 * the library gets back the id it presented.
 */
export class KnexAdapter implements Adapter {
  readonly #knex: Knex;
  readonly #model: string;
  readonly #options: KnexAdapterOptions;

  constructor(knex: Knex, model: string, options: KnexAdapterOptions) {
    this.#knex = knex;
    this.#model = model;
    this.#options = options;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const stored = payloadToStore(this.#model, this.#model === 'Session' ? withDevice(payload) : payload);
    await upsertPayload(this.#knex, {
      model: this.#model,
      id: storedIdOf(this.#model, id),
      payload: stored.payload,
      userCode: stored.userCodeDigest,
      expiresAt: typeof expiresIn === 'number' ? Date.now() + (expiresIn + this.#options.clockTolerance) * 1000 : null,
    });
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const found = await findPayload(this.#knex, this.#model, 'id', storedIdOf(this.#model, id));
    return found && this.#returned(found, id);
  }

  /** The library looks a Session up by its uid (not a secret); it gets a reference as the id. */
  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const found = await findPayload(this.#knex, this.#model, 'uid', uid);
    return found && this.#returned(found, referenceTo(this.#model, found.id));
  }

  /** The library saves what it finds here again: it gets a reference as the device code. */
  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    if (userCode === '') return undefined;
    const found = await findPayload(this.#knex, this.#model, 'user_code', secretDigest(userCode));
    return found && this.#returned(found, referenceTo(this.#model, found.id), userCode);
  }

  /**
   * Marks the row consumed only if nobody did before (one atomic UPDATE). The library checked
   * `consumed` on a copy it read earlier, so two parallel redemptions both get here: exactly
   * one UPDATE changes a row; the other caller gets invalid_grant, and the grant is revoked
   * as for a sequential replay.
   */
  async consume(id: string): Promise<void> {
    const storedId = storedIdOf(this.#model, id);
    const changed = await consumePayload(this.#knex, this.#model, storedId);
    if (changed !== 1 && this.#model === 'PushedAuthorizationRequest') {
      // RFC 9126: a request_uri answers once, also when two completions race.
      throw new errors.InvalidRequestUri('request_uri is invalid, expired, or was already used');
    }
    if (changed === 1 || !GRANT_SOURCES.has(this.#model)) return;
    const grantId = await grantIdOf(this.#knex, this.#model, storedId);
    if (grantId) await (this.#options.onReplay ?? ((g: string) => revokeGrant(this.#knex, g)))(grantId);
    throw new errors.InvalidGrant(`${this.#model} already consumed`);
  }

  async destroy(id: string): Promise<void> {
    await destroyPayload(this.#knex, this.#model, storedIdOf(this.#model, id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await revokeModelByGrantId(this.#knex, this.#model, grantId);
  }

  #returned(found: LivePayload, id: string, userCode?: string): AdapterPayload {
    const payload = payloadFound(this.#model, found.payload, id, userCode) as AdapterPayload;
    return found.consumedAt === null ? payload : { ...payload, consumed: Math.floor(found.consumedAt / 1000) };
  }
}
