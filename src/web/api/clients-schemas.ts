import { z } from 'zod';
import { SUPPORTED_GRANT_TYPES } from '../../core/clients/client-service.js';
import { TOKEN_ENDPOINT_AUTH_METHODS, type JwkSet, type NewClient } from '../../storage/clients.js';
import { listOfStrings, MUST_BE_BOOLEAN, pageOf, pathId, REQUIRED, timestamp } from './schemas.js';

const KEY_DOCS = {
  jwks: "JWK Set of the client's PUBLIC keys (private members are refused); null removes it.",
  jwks_uri: 'Where the client publishes its keys instead of `jwks`; null removes it.',
  require_pushed_authorization_requests: 'RFC 9126: authorization requests only through /o/request.',
  require_signed_request_object: 'RFC 9101: authorization requests only as signed request objects (needs keys).',
};
const RESOURCE_SERVER_DOC =
  'API resources (identifiers) this client is the resource server of: it may introspect the access tokens issued to any client for them. Confidential clients only; never through dynamic registration.';
const GRANTS = `Of ${SUPPORTED_GRANT_TYPES.join(', ')}.`;

export const ClientSchema = z
  .object({
    client_id: z.string().meta({ readOnly: true }),
    client_name: z.string(),
    client_type: z.enum(['public', 'confidential']),
    redirect_uris: z.array(z.string()),
    post_logout_redirect_uris: z.array(z.string()),
    grant_types: z.array(z.string()).meta({ description: GRANTS }),
    scope: z.string(),
    token_endpoint_auth_method: z.enum(TOKEN_ENDPOINT_AUTH_METHODS),
    backchannel_logout_uri: z.string().nullable(),
    dpop_bound_access_tokens: z.boolean(),
    jwks: z
      .object({ keys: z.array(z.unknown()).meta({ description: 'The public JWKs.' }) })
      .nullable()
      .meta({ description: KEY_DOCS.jwks }),
    jwks_uri: z.string().nullable().meta({ description: KEY_DOCS.jwks_uri }),
    require_pushed_authorization_requests: z.boolean().meta({ description: KEY_DOCS.require_pushed_authorization_requests }),
    require_signed_request_object: z.boolean().meta({ description: KEY_DOCS.require_signed_request_object }),
    api_scopes: z.array(z.string()).meta({ description: 'Scopes of the REST API the client may ask for.' }),
    resource_server_for: z.array(z.string()).meta({ description: RESOURCE_SERVER_DOC }),
    built_in: z.boolean().meta({ readOnly: true }),
    created_at: timestamp().meta({ readOnly: true }),
    updated_at: timestamp().meta({ readOnly: true }),
    client_secret: z.string().optional().meta({ readOnly: true, description: 'Only in the response that creates it; stored as a hash.' }),
  })
  .meta({ id: 'Client' });

export const ClientPageSchema = pageOf('ClientPage', ClientSchema);

const NON_EMPTY = 'Must be a non-empty string.';
const flag = (description?: string) => z.boolean({ error: MUST_BE_BOOLEAN }).optional().meta(description ? { description } : {});

/** The writable fields with their JSON types; the client service checks the values (URIs, grants, keys). */
const clientWrite = {
  client_name: z
    .string({ error: NON_EMPTY })
    .refine((name) => name.trim() !== '', { error: NON_EMPTY })
    .optional(),
  redirect_uris: listOfStrings().optional(),
  post_logout_redirect_uris: listOfStrings().optional(),
  grant_types: listOfStrings().optional().meta({ description: GRANTS }),
  api_scopes: listOfStrings().optional().meta({ description: 'Scopes of the REST API the client may ask for (none by default).' }),
  resource_server_for: listOfStrings().optional().meta({ description: RESOURCE_SERVER_DOC }),
  client_type: z.enum(['public', 'confidential'], { error: 'Must be "public" or "confidential".' }).optional(),
  scope: z.string({ error: 'Must be a space-separated string.' }).optional(),
  backchannel_logout_uri: z.string({ error: 'Must be a URL.' }).optional().meta({ description: 'OIDC Back-Channel Logout receiver.' }),
  dpop_bound_access_tokens: flag('RFC 9449 §5.2: token requests without a DPoP proof are refused.'),
  token_endpoint_auth_method: z
    .enum(TOKEN_ENDPOINT_AUTH_METHODS, { error: `Must be one of ${TOKEN_ENDPOINT_AUTH_METHODS.join(', ')}.` })
    .optional()
    .meta({ description: 'Default: `none` for public clients, `client_secret_basic` otherwise. `private_key_jwt` needs `jwks` or `jwks_uri` and gets no secret.' }),
  jwks: z
    .record(z.string(), z.unknown(), { error: 'Must be a JWK Set object or null.' })
    .nullable()
    .optional()
    .meta({ description: KEY_DOCS.jwks }),
  jwks_uri: z.string({ error: 'Must be a URL or null.' }).nullable().optional().meta({ description: KEY_DOCS.jwks_uri }),
  require_pushed_authorization_requests: flag(KEY_DOCS.require_pushed_authorization_requests),
  require_signed_request_object: flag(KEY_DOCS.require_signed_request_object),
};

export const ClientWriteSchema = z.strictObject(clientWrite).meta({ id: 'ClientWrite' });
export const ClientCreateSchema = z
  .strictObject({
    ...clientWrite,
    client_name: z
      .string({ error: (issue) => (issue.input === undefined ? REQUIRED : NON_EMPTY) })
      .refine((name) => name.trim() !== '', { error: NON_EMPTY }),
  })
  .meta({ id: 'ClientCreate' });

export const ClientIdParams = z.object({ clientId: pathId('The client_id.') });

/** The service's description of a client from the fields sent (absent ones stay unset). */
export function newClientOf(body: z.output<typeof ClientWriteSchema>): Partial<NewClient> {
  const out: Partial<NewClient> = {};
  if (body.client_name !== undefined) out.name = body.client_name;
  if (body.redirect_uris) out.redirectUris = body.redirect_uris;
  if (body.post_logout_redirect_uris) out.postLogoutRedirectUris = body.post_logout_redirect_uris;
  if (body.grant_types) out.grantTypes = body.grant_types;
  if (body.api_scopes) out.apiScopes = body.api_scopes;
  if (body.resource_server_for) out.resourceServerFor = body.resource_server_for;
  if (body.client_type !== undefined) out.isPublic = body.client_type === 'public';
  if (body.scope !== undefined) out.scope = body.scope;
  if (body.backchannel_logout_uri !== undefined) out.backchannelLogoutUri = body.backchannel_logout_uri;
  if (body.dpop_bound_access_tokens !== undefined) out.dpopBoundAccessTokens = body.dpop_bound_access_tokens;
  if (body.token_endpoint_auth_method !== undefined) out.tokenEndpointAuthMethod = body.token_endpoint_auth_method;
  if (body.jwks !== undefined) out.jwks = body.jwks as JwkSet | null;
  if (body.jwks_uri !== undefined) out.jwksUri = body.jwks_uri;
  if (body.require_pushed_authorization_requests !== undefined) out.requirePushedAuthorizationRequests = body.require_pushed_authorization_requests;
  if (body.require_signed_request_object !== undefined) out.requireSignedRequestObject = body.require_signed_request_object;
  return out;
}
