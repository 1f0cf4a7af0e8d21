import type { Knex } from 'knex';
import { clientMetadataProblem, clientNameProblem } from './metadata-limits.js';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import { actorEntry, type AuditActor, type AuditLog } from '../audit/audit-log.js';
import { DomainError } from '../errors.js';
import { apiScopesProblem, clientApiScopes } from './api-scopes.js';
import { resourceServerFor, resourceServerProblem } from './resource-server.js';
import {
  authMethodOf,
  clientMetadata,
  generateClientSecret,
  KEY_METADATA,
  TOKEN_ENDPOINT_AUTH_METHODS,
  usesSecret,
  type ClientMetadata,
  type ClientRecord,
  type ClientRepository,
  type JwkSet,
  type NewClient,
  type TokenEndpointAuthMethod,
} from '../../storage/clients.js';
import { revokeClient } from '../../storage/oidc-payloads.js';

/** Grant types a client may be registered with (`password` is legacy, for first-party apps). */
export const SUPPORTED_GRANT_TYPES = [
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'urn:ietf:params:oauth:grant-type:device_code',
  'password',
] as const;

/** Clients Latchkey creates for itself; they cannot be edited or deleted through the API. */
export const BUILT_IN_CLIENT_IDS = new Set(['latchkey-first-party', 'latchkey-admin', 'latchkey-account']);

const invalidMetadata = (detail: string) => new DomainError('invalid_client_metadata', { detail });

/** JWK members that carry private or symmetric key material (RFC 7518 section 6, RFC 8037). */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];

/** A client registers public keys only: a private key given to us would no longer be private. */
function jwksProblem(jwks: unknown): string | null {
  if (!jwks || typeof jwks !== 'object' || Array.isArray(jwks)) return 'jwks must be a JWK Set: {"keys": [...]}.';
  const keys = (jwks as { keys?: unknown }).keys;
  if (!Array.isArray(keys) || keys.length === 0) return 'jwks must be a JWK Set with at least one key in "keys".';
  for (const [i, key] of keys.entries()) {
    if (!key || typeof key !== 'object' || Array.isArray(key) || typeof (key as Record<string, unknown>)['kty'] !== 'string') {
      return `jwks.keys[${i}] must be a JWK with a "kty".`;
    }
    const leaked = PRIVATE_JWK_MEMBERS.find((member) => member in key);
    if (leaked) return `jwks.keys[${i}] has the private member "${leaked}": register public keys only.`;
  }
  return null;
}

/** Token endpoint authentication and keys: what the provider's own validation leaves open. */
function authProblem(input: NewClient): string | null {
  const method = input.tokenEndpointAuthMethod;
  if (method !== undefined && !(TOKEN_ENDPOINT_AUTH_METHODS as readonly string[]).includes(method)) {
    return `Unsupported token_endpoint_auth_method "${String(method)}"; use one of ${TOKEN_ENDPOINT_AUTH_METHODS.join(', ')}.`;
  }
  if (input.isPublic === true && method !== undefined && method !== 'none') return 'A public client authenticates with "none".';
  if (input.isPublic === false && method === 'none') return 'A confidential client cannot use "none"; choose a secret or private_key_jwt.';
  if (input.jwks) {
    const problem = jwksProblem(input.jwks);
    if (problem) return problem;
  }
  if (input.requireSignedRequestObject && !input.jwks && !input.jwksUri) {
    return 'require_signed_request_object needs jwks or jwks_uri: request objects are verified with the client\'s keys.';
  }
  return null;
}

/** Rules the provider does not know about, then the provider's own metadata validation. */
export async function validateClientInput(provider: Provider, input: NewClient, metadata: ClientMetadata): Promise<void> {
  if (!input.name.trim()) throw invalidMetadata('A client name is required.');
  const limits = clientNameProblem(input.name.trim()) ?? clientMetadataProblem(metadata);
  if (limits) throw invalidMetadata(limits);
  for (const grant of input.grantTypes ?? []) {
    if (!(SUPPORTED_GRANT_TYPES as readonly string[]).includes(grant)) {
      throw invalidMetadata(`Unsupported grant type "${grant}"; use one of ${SUPPORTED_GRANT_TYPES.join(', ')}.`);
    }
  }
  const issuesRefreshTokens = ['authorization_code', 'password', 'urn:ietf:params:oauth:grant-type:device_code'];
  if (input.grantTypes?.includes('refresh_token') && !input.grantTypes.some((g) => issuesRefreshTokens.includes(g))) {
    throw invalidMetadata('refresh_token needs authorization_code: nothing else issues refresh tokens.');
  }
  const authMethod = authMethodOf(input);
  if (authMethod === 'none' && input.grantTypes?.includes('client_credentials')) {
    throw invalidMetadata('A public client cannot use client_credentials: it has no secret.');
  }
  const problem = authProblem(input) ?? apiScopesProblem(input.apiScopes?.join(' ')) ?? resourceServerProblem(input.resourceServerFor);
  if (problem) throw invalidMetadata(problem);
  if (input.resourceServerFor?.length && authMethod === 'none') {
    throw invalidMetadata('A public client cannot be a resource server: introspection needs client authentication.');
  }
  try {
    await provider.Client.validate({
      ...metadata,
      client_id: 'validation',
      ...(usesSecret(authMethod) ? { client_secret: 'validation-secret' } : {}),
    } as Parameters<Provider['Client']['validate']>[0]);
  } catch (error) {
    if (error instanceof errors.InvalidClientMetadata || error instanceof errors.InvalidRedirectUri) {
      // The provider says invalid_redirect_uri for a bad redirect_uris, invalid_client_metadata for the rest.
      const code = error.message === 'invalid_redirect_uri' ? 'invalid_redirect_uri' : 'invalid_client_metadata';
      throw new DomainError(code, { detail: error.error_description ?? error.message });
    }
    throw error;
  }
}

/**
 * Registers a client after the provider itself has validated the metadata (redirect URI
 * rules, grant/response type consistency), so nothing stored can fail to load later.
 * @returns the client and its secret, which is not stored and cannot be shown again.
 */
export async function registerClient(
  deps: { clients: ClientRepository; provider: Provider },
  input: NewClient,
): Promise<{ client: ClientRecord; clientSecret: string | null }> {
  const candidate = deps.clients.draft({ ...input, name: input.name.trim() });
  await validateClientInput(deps.provider, { ...input, name: input.name.trim() }, candidate.metadata);
  return deps.clients.insertDraft(candidate);
}

/** How a client is described to people and the API: everything but the secret. */
export function clientJson(client: ClientRecord) {
  const m = client.metadata;
  return {
    client_id: client.clientId,
    client_name: client.name,
    client_type: client.isPublic ? ('public' as const) : ('confidential' as const),
    redirect_uris: m.redirect_uris ?? [],
    post_logout_redirect_uris: m.post_logout_redirect_uris ?? [],
    grant_types: m.grant_types ?? [],
    scope: m.scope ?? '',
    // Only the methods of TOKEN_ENDPOINT_AUTH_METHODS are ever stored (the service checks them).
    token_endpoint_auth_method: (m.token_endpoint_auth_method ?? (client.isPublic ? 'none' : 'client_secret_basic')) as TokenEndpointAuthMethod,
    backchannel_logout_uri: typeof m['backchannel_logout_uri'] === 'string' ? m['backchannel_logout_uri'] : null,
    dpop_bound_access_tokens: m['dpop_bound_access_tokens'] === true,
    jwks: (m['jwks'] as JwkSet | undefined) ?? null,
    jwks_uri: typeof m['jwks_uri'] === 'string' ? m['jwks_uri'] : null,
    require_pushed_authorization_requests: m['require_pushed_authorization_requests'] === true,
    require_signed_request_object: m['require_signed_request_object'] === true,
    api_scopes: [...clientApiScopes(m)],
    resource_server_for: resourceServerFor(m),
    built_in: BUILT_IN_CLIENT_IDS.has(client.clientId),
    created_at: new Date(client.createdAt).toISOString(),
    updated_at: new Date(client.updatedAt).toISOString(),
  };
}

/** The editable description of a client, as the forms and the REST API send it. */
export function describeClient(client: ClientRecord): NewClient {
  const m = client.metadata;
  return {
    name: client.name,
    redirectUris: m.redirect_uris ?? [],
    postLogoutRedirectUris: m.post_logout_redirect_uris ?? [],
    grantTypes: m.grant_types ?? [],
    isPublic: client.isPublic,
    scope: m.scope ?? '',
    ...(typeof m['backchannel_logout_uri'] === 'string' ? { backchannelLogoutUri: m['backchannel_logout_uri'] } : {}),
    dpopBoundAccessTokens: m['dpop_bound_access_tokens'] === true,
    tokenEndpointAuthMethod: (m.token_endpoint_auth_method as TokenEndpointAuthMethod | undefined) ?? authMethodOf({ isPublic: client.isPublic }),
    jwks: (m['jwks'] as JwkSet | undefined) ?? null,
    jwksUri: typeof m['jwks_uri'] === 'string' ? m['jwks_uri'] : null,
    requirePushedAuthorizationRequests: m['require_pushed_authorization_requests'] === true,
    requireSignedRequestObject: m['require_signed_request_object'] === true,
    apiScopes: [...clientApiScopes(m)],
    resourceServerFor: resourceServerFor(m),
  };
}

/**
 * The client after `changes`: a change of type alone brings that type's default
 * authentication, a change of authentication alone brings its type.
 */
function mergeChanges(client: ClientRecord, changes: Partial<NewClient>): NewClient {
  const merged: NewClient = { ...describeClient(client), ...changes, name: (changes.name ?? client.name).trim() };
  if (changes.tokenEndpointAuthMethod === undefined && changes.isPublic !== undefined && changes.isPublic !== client.isPublic) {
    delete merged.tokenEndpointAuthMethod;
  }
  if (changes.tokenEndpointAuthMethod !== undefined && changes.isPublic === undefined) merged.isPublic = changes.tokenEndpointAuthMethod === 'none';
  return merged;
}

/** Stored metadata without what {@link clientMetadata} owns, so a cleared field goes away. */
function withoutKeyMetadata(metadata: ClientMetadata): ClientMetadata {
  const rest = { ...metadata };
  for (const key of KEY_METADATA) delete rest[key];
  return rest;
}

/**
 * Application management shared by the admin pages, the REST API and the CLI. Secrets are
 * shown once (on creation, rotation, or a switch to confidential) and stored as hashes;
 * deleting a client, or changing its type, revokes what it was issued.
 */
/** Looks an API resource up by identifier (the built-in one included). */
export type FindApiResource = (identifier: string) => Promise<{ builtIn: boolean } | undefined>;

export function createClientService({
  knex,
  clients,
  provider,
  audit,
  findResource,
}: {
  knex: Knex;
  clients: ClientRepository;
  provider: () => Provider;
  audit: AuditLog;
  findResource: FindApiResource;
}) {
  const record = (event: string, clientId: string, by: AuditActor | undefined, details?: Record<string, unknown>) =>
    audit.record(event, { ...actorEntry(by), targetType: 'client', targetId: clientId, ...(details ? { details } : {}) });

  async function existing(clientId: string): Promise<ClientRecord> {
    const client = await clients.find(clientId);
    if (!client) throw new DomainError('client_not_found');
    return client;
  }

  function editable(client: ClientRecord): void {
    if (BUILT_IN_CLIENT_IDS.has(client.clientId)) {
      throw new DomainError('built_in_client');
    }
  }

  /** A resource server serves registered resources, and not Latchkey's own API (Latchkey is its resource server). */
  async function checkServedResources(input: Pick<NewClient, 'resourceServerFor'>): Promise<void> {
    for (const identifier of input.resourceServerFor ?? []) {
      const resource = await findResource(identifier);
      if (!resource) throw invalidMetadata(`resource_server_for: ${identifier} is not a registered API resource.`);
      if (resource.builtIn) throw invalidMetadata(`resource_server_for: ${identifier} is Latchkey's own API; Latchkey is its resource server.`);
    }
  }

  /** Deletes every token, code and grant issued to a client. */
  async function revokeIssued(clientId: string): Promise<void> {
    await revokeClient(knex, clientId);
  }

  return {
    get: existing,
    list: () => clients.list(),

    async register(input: NewClient, by?: AuditActor) {
      await checkServedResources(input);
      const result = await registerClient({ clients, provider: provider() }, input);
      await record('client.created', result.client.clientId, by, { name: result.client.name, public: result.client.isPublic });
      return result;
    },

    /** Applies changes; a switch to a secret method returns a new secret, away from one drops it. */
    async update(clientId: string, changes: Partial<NewClient>, by?: AuditActor): Promise<{ client: ClientRecord; clientSecret: string | null }> {
      const client = await existing(clientId);
      editable(client);
      const merged = mergeChanges(client, changes);
      if (changes.resourceServerFor) await checkServedResources(changes);
      const metadata = { ...withoutKeyMetadata(client.metadata), ...clientMetadata(merged) };
      await validateClientInput(provider(), merged, metadata);
      const needsSecret = usesSecret(authMethodOf(merged));
      let secret: string | null | undefined;
      if (!needsSecret && client.hasSecret) secret = null;
      if (needsSecret && !client.hasSecret) secret = generateClientSecret();
      const updated = await clients.update(clientId, merged.name, metadata, secret);
      if (!updated) throw new DomainError('client_not_found');
      // Tokens issued under the old rules (grants, scopes, type, credentials) must not outlive them.
      const typeChanged = secret !== undefined || updated.isPublic !== client.isPublic;
      if (typeChanged) await revokeIssued(clientId);
      await record('client.updated', clientId, by, { fields: Object.keys(changes), type_changed: typeChanged });
      return { client: updated, clientSecret: secret ?? null };
    },

    /**
     * A new secret; the old one stops working at once. Issued tokens stay valid (as in
     * Keycloak): every refresh or introspection needs the new secret anyway.
     */
    async rotateSecret(clientId: string, by?: AuditActor): Promise<{ client: ClientRecord; clientSecret: string }> {
      const client = await existing(clientId);
      editable(client);
      if (client.isPublic) throw new DomainError('public_client_no_secret');
      if (!client.hasSecret) throw new DomainError('private_key_jwt_no_secret');
      const secret = generateClientSecret();
      await clients.setSecret(clientId, secret);
      await record('client.secret_rotated', clientId, by);
      return { client: await existing(clientId), clientSecret: secret };
    },

    async remove(clientId: string, by?: AuditActor): Promise<void> {
      const client = await existing(clientId);
      editable(client);
      await revokeIssued(clientId);
      await clients.delete(clientId);
      await record('client.deleted', clientId, by, { name: client.name });
    },
  };
}

export type ClientService = ReturnType<typeof createClientService>;
