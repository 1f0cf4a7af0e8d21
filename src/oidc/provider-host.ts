import type Koa from 'koa';
import type Provider from 'oidc-provider';
import type { KeyMaterial, KeyStore } from '../core/keys/key-store.js';

/**
 * Holds the running provider and replaces it when the keys in the database change (a
 * rotation by the CLI or another process). The provider reads its keys only when it is
 * built, so a rebuild is how a new key reaches this process; the Koa app's cookie keys
 * follow, since mounted provider middleware signs cookies with them.
 */
export class ProviderHost {
  #provider: Provider;
  #keys: KeyMaterial;
  #version: string;
  readonly #build: (keys: KeyMaterial) => Provider;
  readonly #keyStore: KeyStore;
  readonly #app: Koa;

  constructor(keys: KeyMaterial, keyStore: KeyStore, app: Koa, build: (keys: KeyMaterial) => Provider) {
    this.#build = build;
    this.#keyStore = keyStore;
    this.#app = app;
    this.#provider = build(keys);
    this.#keys = keys;
    this.#version = keys.version;
    app.keys = keys.cookieKeys;
  }

  /** The key material the current provider was built from (private keys: server-side only). */
  get keys(): KeyMaterial {
    return this.#keys;
  }

  get provider(): Provider {
    return this.#provider;
  }

  /** Rebuilds the provider if the keys changed; returns true when it did. */
  async refresh(): Promise<boolean> {
    const keys = await this.#keyStore.load();
    if (keys.version === this.#version) return false;
    this.#provider = this.#build(keys);
    this.#keys = keys;
    this.#version = keys.version;
    this.#app.keys = keys.cookieKeys;
    return true;
  }
}
