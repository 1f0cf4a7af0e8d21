import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { ClientMetadata, ClientRepository } from '../storage/clients.js';

/**
 * The provider's `Client` model, read from and written to our own clients table. Reads hand
 * the provider the secret's hash where it expects the secret (our compareClientSecret hashes
 * what clients present). Writes come from dynamic registration (RFC 7591/7592): a new secret
 * arrives in plain text and is stored only as its hash. The provider keeps no client cache
 * beyond what it loaded, so edits and deletions apply at once.
 */
export class ClientAdapter implements Adapter {
  readonly #clients: ClientRepository;
  readonly #revokeIssued: (clientId: string) => Promise<unknown>;
  readonly #asServed: (payload: Record<string, unknown>) => Record<string, unknown>;

  /**
   * `revokeIssued` deletes every token, code and grant issued to a client (RFC 7592 DELETE);
   * `asServed` adds what this process derives itself rather than stores (the built-in pages
   * clients' redirect URIs).
   */
  constructor(clients: ClientRepository, revokeIssued: (clientId: string) => Promise<unknown>, asServed: (payload: Record<string, unknown>) => Record<string, unknown> = (p) => p) {
    this.#clients = clients;
    this.#revokeIssued = revokeIssued;
    this.#asServed = asServed;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const stored = await this.#clients.findProviderMetadata(id);
    return stored ? (this.#asServed(stored) as AdapterPayload) : undefined;
  }

  async upsert(id: string, payload: AdapterPayload): Promise<void> {
    const { client_id: _id, client_secret: secret, ...rest } = payload as Record<string, unknown>;
    const metadata = rest as ClientMetadata;
    const name = typeof metadata.client_name === 'string' && metadata.client_name.trim() ? metadata.client_name.trim() : id;
    const stored = await this.#clients.findProviderMetadata(id);
    if (!stored) {
      await this.#clients.insertDraft({ clientId: id, name, metadata, clientSecret: typeof secret === 'string' ? secret : null });
      return;
    }
    // An update (RFC 7592) carries the stored hash back unless the provider made a new secret.
    const keep = secret === stored['client_secret'];
    await this.#clients.update(id, name, metadata, keep ? undefined : typeof secret === 'string' ? secret : null);
  }

  async destroy(id: string): Promise<void> {
    await this.#revokeIssued(id);
    await this.#clients.delete(id);
  }

  async consume(): Promise<void> {}
  async findByUid(): Promise<undefined> {
    return undefined;
  }
  async findByUserCode(): Promise<undefined> {
    return undefined;
  }
  async revokeByGrantId(): Promise<void> {}
}
