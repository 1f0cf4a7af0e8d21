import type { Adapter, AdapterPayload } from 'oidc-provider';

/** True when a value read from a request cannot name anything we store (PostgreSQL refuses NUL in text). */
export const hasNul = (value: string): boolean => value.includes('\u0000');

/**
 * An adapter that answers "not found" for an id with a NUL byte instead of sending it to the
 * database, where PostgreSQL fails the query (a 500) and SQLite looks for it in vain. The
 * request edge refuses NUL bytes in parameters already (src/web/http/nul-bytes.ts); this covers the
 * ids that come from elsewhere, such as a client_id inside HTTP Basic credentials, so the
 * provider answers with its own error (invalid_client, invalid_grant, ...).
 */
export class NulSafeAdapter implements Adapter {
  readonly #inner: Adapter;
  constructor(inner: Adapter) {
    this.#inner = inner;
  }

  upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void | undefined> {
    return this.#inner.upsert(id, payload, expiresIn);
  }
  async find(id: string): Promise<AdapterPayload | void | undefined> {
    return hasNul(id) ? undefined : this.#inner.find(id);
  }
  async findByUid(uid: string): Promise<AdapterPayload | void | undefined> {
    return hasNul(uid) ? undefined : this.#inner.findByUid(uid);
  }
  async findByUserCode(userCode: string): Promise<AdapterPayload | void | undefined> {
    return hasNul(userCode) ? undefined : this.#inner.findByUserCode(userCode);
  }
  async consume(id: string): Promise<void | undefined> {
    if (!hasNul(id)) await this.#inner.consume(id);
  }
  async destroy(id: string): Promise<void | undefined> {
    if (!hasNul(id)) await this.#inner.destroy(id);
  }
  async revokeByGrantId(grantId: string): Promise<void | undefined> {
    if (!hasNul(grantId)) await this.#inner.revokeByGrantId(grantId);
  }
}
