import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Knex } from 'knex';
import { fastQuery } from './fast-query.js';

/** OAuth client metadata as node-oidc-provider reads it (RFC 7591 names), secret excluded. */
export interface ClientMetadata {
  client_name?: string;
  redirect_uris?: string[];
  post_logout_redirect_uris?: string[];
  grant_types?: string[];
  response_types?: string[];
  token_endpoint_auth_method?: string;
  scope?: string;
  [other: string]: unknown;
}

export interface ClientRecord {
  clientId: string;
  name: string;
  /** No client authentication (`none`): not merely "no secret", as private_key_jwt has none either. */
  isPublic: boolean;
  /** Whether a secret hash is stored (client_secret_basic / client_secret_post). */
  hasSecret: boolean;
  metadata: ClientMetadata;
  createdAt: number;
  updatedAt: number;
}

export interface NewClient {
  name: string;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  grantTypes?: string[];
  isPublic?: boolean;
  scope?: string;
  /** OIDC Back-Channel Logout: where logout tokens are POSTed when the person signs out. */
  backchannelLogoutUri?: string;
  /** RFC 9449 §5.2: every token request must carry a DPoP proof, so every token is DPoP-bound. */
  dpopBoundAccessTokens?: boolean;
  /** Defaults to `none` for public clients and `client_secret_basic` for the others. */
  tokenEndpointAuthMethod?: TokenEndpointAuthMethod;
  /** The client's public keys (private_key_jwt, request objects); null for none. */
  jwks?: JwkSet | null;
  /** Where the provider fetches the client's public keys instead; null for none. */
  jwksUri?: string | null;
  /** RFC 9126: authorization requests only through PAR. */
  requirePushedAuthorizationRequests?: boolean;
  /** RFC 9101: authorization requests only as signed request objects. */
  requireSignedRequestObject?: boolean;
  /** Scopes of Latchkey's REST API the client may ask for (none by default). */
  apiScopes?: string[];
  /** API resources whose access tokens (issued to any client) this client may introspect. */
  resourceServerFor?: string[];
}

/** How clients may authenticate at the token endpoint (no client_secret_jwt: secrets are hashed). */
export const TOKEN_ENDPOINT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
export type TokenEndpointAuthMethod = (typeof TOKEN_ENDPOINT_AUTH_METHODS)[number];

/** A JWK Set (RFC 7517 section 5). */
export interface JwkSet {
  keys: object[];
}

/** Metadata that {@link clientMetadata} owns and leaves out when unset (so an edit can remove it). */
export const KEY_METADATA = ['jwks', 'jwks_uri', 'require_pushed_authorization_requests', 'require_signed_request_object', 'api_scopes', 'resource_server_for'] as const;

/** The token endpoint authentication a client description asks for, or its default. */
export function authMethodOf(input: Pick<NewClient, 'isPublic' | 'tokenEndpointAuthMethod'>): TokenEndpointAuthMethod {
  return input.tokenEndpointAuthMethod ?? (input.isPublic ? 'none' : 'client_secret_basic');
}

/** Only the client_secret_* methods need a secret. */
export const usesSecret = (method: string | undefined) => method === 'client_secret_basic' || method === 'client_secret_post';

/** A client prepared by `draft`, not yet stored. */
export interface ClientDraft {
  clientId: string;
  clientSecret: string | null;
  name: string;
  metadata: ClientMetadata;
}

interface ClientRow {
  client_id: string;
  name: string;
  client_secret_hash: string | null;
  metadata: string;
  created_at: number;
  updated_at: number;
}

/** Client secrets are random 256-bit values, so one SHA-256 is enough to store them. */
export function hashClientSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Whether a stored secret is Latchkey's own SHA-256 (else one imported as a Django password hash). */
export function isClientSecretHash(stored: string): boolean {
  return /^[0-9a-f]{64}$/.test(stored);
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function clientSecretMatches(storedHash: string, presented: string): boolean {
  const a = Buffer.from(storedHash, 'hex');
  const b = Buffer.from(hashClientSecret(presented), 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

export const DEFAULT_GRANT_TYPES = ['authorization_code', 'refresh_token'];

/** A new random 256-bit client secret. */
export function generateClientSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Provider metadata for a client described the way people register one. */
export function clientMetadata(input: NewClient): ClientMetadata {
  const grantTypes = input.grantTypes?.length ? [...new Set(input.grantTypes)] : DEFAULT_GRANT_TYPES;
  return {
    client_name: input.name,
    redirect_uris: input.redirectUris ?? [],
    post_logout_redirect_uris: input.postLogoutRedirectUris ?? [],
    grant_types: grantTypes,
    response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
    token_endpoint_auth_method: authMethodOf(input),
    scope: input.scope ?? 'openid profile email offline_access',
    ...(input.backchannelLogoutUri ? { backchannel_logout_uri: input.backchannelLogoutUri, backchannel_logout_session_required: true } : {}),
    // Always written, so that turning it off replaces an earlier true.
    dpop_bound_access_tokens: input.dpopBoundAccessTokens === true,
    ...(input.jwks ? { jwks: input.jwks } : {}),
    ...(input.jwksUri ? { jwks_uri: input.jwksUri } : {}),
    ...(input.requirePushedAuthorizationRequests ? { require_pushed_authorization_requests: true } : {}),
    ...(input.requireSignedRequestObject ? { require_signed_request_object: true } : {}),
    ...(input.apiScopes?.length ? { api_scopes: [...new Set(input.apiScopes)].join(' ') } : {}),
    ...(input.resourceServerFor?.length ? { resource_server_for: [...new Set(input.resourceServerFor)] } : {}),
  };
}

function fromRow(row: ClientRow): ClientRecord {
  const metadata = JSON.parse(row.metadata) as ClientMetadata;
  return {
    clientId: row.client_id,
    name: row.name,
    // A client without a secret is public unless it authenticates with its keys.
    isPublic: row.client_secret_hash === null && metadata.token_endpoint_auth_method !== 'private_key_jwt',
    hasSecret: row.client_secret_hash !== null,
    metadata,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

export type ClientRepository = ReturnType<typeof createClientRepository>;

/** SQL for the clients table. Secrets leave it only as the value returned once on creation. */
export function createClientRepository(knex: Knex) {
  const table = () => knex<ClientRow>('clients');
  /** One client's row, as a prepared statement: the provider, bearer auth and the pages all ask. */
  const rowOf = async (clientId: string) =>
    (await fastQuery(knex, 'select * from clients where client_id = ? limit 1', [clientId], 'first')) as unknown as ClientRow | undefined;

  return {
    /** Prepares a client (ids, secret, metadata) without storing it, so it can be validated first. */
    draft(input: NewClient): ClientDraft {
      return {
        clientId: randomBytes(24).toString('base64url'),
        clientSecret: usesSecret(authMethodOf(input)) ? generateClientSecret() : null,
        name: input.name,
        metadata: clientMetadata(input),
      };
    },

    /** Stores a drafted client; the plain secret is in the result and nowhere else. */
    async insertDraft(draft: ClientDraft): Promise<{ client: ClientRecord; clientSecret: string | null }> {
      const now = Date.now();
      const row: ClientRow = {
        client_id: draft.clientId,
        name: draft.name,
        client_secret_hash: draft.clientSecret === null ? null : hashClientSecret(draft.clientSecret),
        metadata: JSON.stringify(draft.metadata),
        created_at: now,
        updated_at: now,
      };
      await table().insert(row);
      return { client: fromRow(row), clientSecret: draft.clientSecret };
    },

    async find(clientId: string): Promise<ClientRecord | undefined> {
      const row = await rowOf(clientId);
      return row ? fromRow(row) : undefined;
    },

    /** Metadata in the shape the provider loads, with the secret hash standing in for the secret. */
    async findProviderMetadata(clientId: string): Promise<Record<string, unknown> | undefined> {
      const row = await rowOf(clientId);
      if (!row) return undefined;
      const metadata = JSON.parse(row.metadata) as ClientMetadata;
      return {
        ...metadata,
        client_id: row.client_id,
        ...(row.client_secret_hash === null ? {} : { client_secret: row.client_secret_hash }),
      };
    },

    /** Replaces name and metadata; `secret` undefined keeps the secret, null removes it. */
    async update(clientId: string, name: string, metadata: ClientMetadata, secret?: string | null): Promise<ClientRecord | undefined> {
      const row: Partial<ClientRow> = { name, metadata: JSON.stringify(metadata), updated_at: Date.now() };
      if (secret !== undefined) row.client_secret_hash = secret === null ? null : hashClientSecret(secret);
      await table().where({ client_id: clientId }).update(row);
      return this.find(clientId);
    },

    /**
     * Stores a client made elsewhere (an import) with its client_id and a secret hash as it
     * comes: {@link hashClientSecret}'s, a Django password hash (verified at first use), or null.
     */
    async insertImported(client: { clientId: string; name: string; metadata: ClientMetadata; secretHash: string | null }): Promise<ClientRecord> {
      const now = Date.now();
      const row: ClientRow = { client_id: client.clientId, name: client.name, client_secret_hash: client.secretHash, metadata: JSON.stringify(client.metadata), created_at: now, updated_at: now };
      await table().insert(row);
      return fromRow(row);
    },

    /** Replaces name, metadata and the stored secret hash as they come (see insertImported). */
    async updateImported(client: { clientId: string; name: string; metadata: ClientMetadata; secretHash: string | null }): Promise<void> {
      await table()
        .where({ client_id: client.clientId })
        .update({ name: client.name, metadata: JSON.stringify(client.metadata), client_secret_hash: client.secretHash, updated_at: Date.now() });
    },

    /** Stores a new secret (as its hash); the old one stops working at once. */
    async setSecret(clientId: string, secret: string): Promise<boolean> {
      return (await table().where({ client_id: clientId }).update({ client_secret_hash: hashClientSecret(secret), updated_at: Date.now() })) > 0;
    },

    async list(): Promise<ClientRecord[]> {
      const rows = await table().orderBy('created_at').orderBy('client_id');
      return rows.map((row) => fromRow(row as ClientRow));
    },

    async delete(clientId: string): Promise<boolean> {
      return (await table().where({ client_id: clientId }).delete()) > 0;
    },
  };
}
