import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { ClientRepository } from '../repositories/clients.js';

/**
 * The provider's `Client` model, read from our own clients table. The provider caches what
 * it loads only for the life of a request, so edits and deletions apply at once.
 */
export class ClientAdapter implements Adapter {
  readonly #clients: ClientRepository;

  constructor(clients: ClientRepository) {
    this.#clients = clients;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return (await this.#clients.findProviderMetadata(id)) as AdapterPayload | undefined;
  }

  async upsert(): Promise<void> {
    throw new Error('clients are managed through Latchkey, not stored by the provider');
  }

  async destroy(id: string): Promise<void> {
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
