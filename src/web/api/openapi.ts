import { DPOP_SIGNING_ALGORITHMS } from '../../oidc/provider.js';
import { DPOP_PROOF_WINDOW_SECONDS } from './dpop-proof.js';
import { API_SCOPE_DESCRIPTIONS } from '../../core/resources/built-in.js';
import type { RouteRule } from './route-guard.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './pagination.js';

/** A REST route as the routers declare it, with the guard's rule when it has one. */
export interface ApiRoute {
  method: string;
  path: string;
  rule?: RouteRule;
}

/** `/api/users/{id}/` in the document is `/api/users/:id` in the router (slash optional). */
export const routerPathOf = (path: string) => path.replace(/\{(\w+)\}/g, ':$1').replace(/(.)\/$/, '$1');

/** The OpenAPI security requirement a guard's rule amounts to (alternatives: any one will do). */
export function securityOf(rule: RouteRule | undefined): Array<Record<string, string[]>> | undefined {
  if (!rule) return undefined;
  return [...(rule.optional ? [{}] : []), { oauth2: [rule.scope] }, { firstParty: [] }, ...(rule.userinfo ? [{ userinfo: [] }] : [])];
}

/**
 * Each operation's `security` comes from the guard of the route that serves it, so the
 * document cannot name another scope than the one the server checks.
 */
function withRouteSecurity<D extends { paths: Record<string, Record<string, object>> }>(routes: readonly ApiRoute[], doc: D): D {
  const rules = new Map(routes.map((route) => [`${route.method} ${route.path}`, route.rule]));
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const security = securityOf(rules.get(`${method.toUpperCase()} ${routerPathOf(path)}`));
      if (security) Object.assign(operation, { security });
    }
  }
  return doc;
}

const json = (schema: object) => ({ 'application/json': { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const error = (description: string) => ({ description, content: json(ref('Error')) });
const form = (schema: object) => ({
  'application/x-www-form-urlencoded': { schema },
  'application/json': { schema },
});

const userId = { name: 'id', in: 'path', required: true, schema: { type: 'integer' } };
const clientId = { name: 'clientId', in: 'path', required: true, schema: { type: 'string' } };
const clientNotFound = error('No such client.');
const resourceId = { name: 'id', in: 'path', required: true, schema: { type: 'integer', minimum: 0 }, description: '0 is the built-in REST API resource.' };
const resourceNotFound = error('No such resource.');
const resourceStaffOnly = error('Only staff may manage API resources; the built-in resource cannot be changed or deleted.');
const staffOnly = error('Only staff may manage clients.');

const unauthorized = error('Missing, invalid or expired token, or a missing or bad DPoP proof (with a `WWW-Authenticate: Bearer` or `DPoP` challenge).');
const forbidden = error('The caller may not do this.');
const notFound = error('No such user (or not yours).');
const invalid = error('Invalid input; `fields` names each bad field.');

/** Client keys and the PAR / signed request object requirements (Client and ClientWrite). */
const clientKeyFields = {
  jwks: { type: ['object', 'null'], description: 'JWK Set of the client\'s PUBLIC keys (private members are refused); null removes it.' },
  jwks_uri: { type: ['string', 'null'], format: 'uri', description: 'Where the client publishes its keys instead of `jwks`; null removes it.' },
  require_pushed_authorization_requests: { type: 'boolean', description: 'RFC 9126: authorization requests only through /o/request.' },
  require_signed_request_object: { type: 'boolean', description: 'RFC 9101: authorization requests only as signed request objects (needs keys).' },
};
const otpField = { type: 'string', description: 'The current TOTP code (or a recovery code); required for accounts with two-factor authentication.' };
const otpDescription =
  'Accounts with two-factor authentication must also send `otp`: without it the answer is 401 `mfa_required`, with a wrong one 401 `invalid_otp` (counted towards the lockout).';
const passwordDoorRefused = error('`invalid_credentials` (wrong username or password, one generic message), `mfa_required` (two-factor account, no `otp`) or `invalid_otp`.');

/**
 * OpenAPI 3.1 description of Latchkey's REST API (the OAuth/OIDC endpoints under /o are
 * described by discovery instead). Served at /api/openapi.json; a test keeps it and the
 * routers in step.
 */
export function openApiDocument(publicUrl: string, routes: readonly ApiRoute[]) {
  return withRouteSecurity(routes, {
    openapi: '3.1.0',
    info: {
      title: 'Latchkey REST API',
      version: '1',
      description:
        'User management, the caller\'s profile and JWT endpoints. Paths work with and without the trailing slash. ' +
        'Errors are `{"error", "error_description"}` (plus `fields` for validation errors). ' +
        `OpenID Connect discovery: ${publicUrl}/o/.well-known/openid-configuration`,
    },
    servers: [{ url: publicUrl }],
    components: {
      securitySchemes: {
        oauth2: {
          type: 'oauth2',
          description:
            `An access token from /o/token issued for the resource ${publicUrl}/api (RFC 8707 \`resource\` parameter): an RFC 9068 JWT ` +
            'carrying the scopes below, of those the client is registered for (`api_scopes`) and the person allowed. DPoP-bound ' +
            'ones go as `Authorization: DPoP <token>` with a fresh `DPoP` proof (RFC 9449: typ dpop+jwt, alg ' +
            `${DPOP_SIGNING_ALGORITHMS.join('/')}, htm, htu = this URL without query, iat within ${DPOP_PROOF_WINDOW_SECONDS} s, single-use jti, ath). ` +
            'A token without the scope a route needs gets 403 `insufficient_scope`.',
          flows: {
            authorizationCode: { authorizationUrl: `${publicUrl}/o/auth`, tokenUrl: `${publicUrl}/o/token`, refreshUrl: `${publicUrl}/o/token`, scopes: API_SCOPE_DESCRIPTIONS },
            clientCredentials: { tokenUrl: `${publicUrl}/o/token`, scopes: API_SCOPE_DESCRIPTIONS },
          },
        },
        firstParty: {
          type: 'http',
          scheme: 'bearer',
          description: "Latchkey's own credentials: an access JWT from /api/token/, or an access token from /users/login/. They act with everything the user may do.",
        },
        userinfo: {
          type: 'http',
          scheme: 'bearer',
          description: 'An access token an app got from /o/token without a resource (the one for /o/me). Only GET /auth/me/ takes it, showing what its OpenID scopes allow.',
        },
      },
      schemas: {
        User: {
          type: 'object',
          properties: {
            id: { type: 'integer', readOnly: true },
            username: { type: 'string', maxLength: 150 },
            email: { type: 'string', format: 'email' },
            first_name: { type: 'string', maxLength: 150 },
            last_name: { type: 'string', maxLength: 150 },
            is_active: { type: 'boolean', description: 'Staff only.' },
            is_staff: { type: 'boolean', description: 'Staff only.' },
            is_superuser: { type: 'boolean', description: 'Superusers only.' },
            email_verified: { type: 'boolean', readOnly: true },
            date_joined: { type: 'string', format: 'date-time', readOnly: true },
            last_login: { type: ['string', 'null'], format: 'date-time', readOnly: true },
            updated_at: { type: 'string', format: 'date-time', readOnly: true },
          },
          required: ['id', 'username', 'email', 'first_name', 'last_name', 'is_active', 'is_staff', 'is_superuser', 'date_joined'],
        },
        ConnectedApp: {
          type: 'object',
          properties: {
            id: { type: 'string', description: 'The grant id.' },
            client_id: { type: 'string' },
            client_name: { type: 'string' },
            scopes: { type: 'array', items: { type: 'string' } },
            resources: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } },
            granted_at: { type: 'string', format: 'date-time' },
            expires_at: { type: ['string', 'null'], format: 'date-time' },
          },
        },
        LoginSession: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            signed_in_at: { type: 'string', format: 'date-time' },
            expires_at: { type: ['string', 'null'], format: 'date-time' },
            applications: { type: 'array', items: { type: 'object', properties: { client_id: { type: 'string' }, client_name: { type: 'string' } } } },
            methods: { type: 'array', items: { type: 'string' }, description: 'amr values, e.g. pwd' },
            current: { type: 'boolean', description: 'The session the calling token came from.' },
          },
        },
        TwoFactorStatus: {
          type: 'object',
          properties: {
            enabled: { type: 'boolean', description: 'Sign-in asks for a code after the password.' },
            enabled_at: { type: ['string', 'null'], format: 'date-time' },
            pending: { type: 'boolean', description: 'An enrollment was started and not confirmed yet.' },
            recovery_codes_remaining: { type: 'integer', description: 'Unused recovery codes.' },
          },
          required: ['enabled', 'enabled_at', 'pending', 'recovery_codes_remaining'],
        },
        TwoFactorEnrollment: {
          type: 'object',
          properties: {
            secret: { type: 'string', description: 'The TOTP secret, base32, for apps that cannot scan.' },
            otpauth_uri: { type: 'string', description: 'otpauth://totp/Latchkey:<username>?secret=…&issuer=Latchkey (SHA1, 6 digits, 30 s)' },
            qr_svg: { type: 'string', description: 'The otpauth URI as a QR code: an SVG document.' },
          },
          required: ['secret', 'otpauth_uri', 'qr_svg'],
        },
        RecoveryCodes: {
          type: 'object',
          properties: {
            recovery_codes: {
              type: 'array',
              items: { type: 'string' },
              description: 'Ten single-use codes (xxxxx-xxxxx-xxxxx-xxxxx), shown in this response only and stored hashed.',
            },
          },
          required: ['recovery_codes'],
        },
        UserWrite: {
          type: 'object',
          additionalProperties: false,
          properties: {
            username: { type: 'string' },
            email: { type: 'string', format: 'email' },
            first_name: { type: 'string' },
            last_name: { type: 'string' },
            password: { type: 'string', minLength: 8, writeOnly: true },
            current_password: { type: 'string', writeOnly: true, description: 'Required to change your own password.' },
            is_active: { type: 'boolean' },
            is_staff: { type: 'boolean' },
            is_superuser: { type: 'boolean' },
          },
        },
        UserPage: {
          type: 'object',
          properties: {
            count: { type: 'integer' },
            next: { type: ['string', 'null'], format: 'uri' },
            previous: { type: ['string', 'null'], format: 'uri' },
            results: { type: 'array', items: ref('User') },
          },
          required: ['count', 'next', 'previous', 'results'],
        },
        TokenPair: {
          type: 'object',
          properties: { access: { type: 'string' }, refresh: { type: 'string' } },
          required: ['access', 'refresh'],
        },
        OAuthTokens: {
          type: 'object',
          properties: {
            access_token: { type: 'string' },
            refresh_token: { type: 'string' },
            token_type: { type: 'string' },
            expires_in: { type: 'integer' },
            scope: { type: 'string' },
          },
          required: ['access_token', 'token_type', 'expires_in', 'scope'],
        },
        Client: {
          type: 'object',
          properties: {
            client_id: { type: 'string', readOnly: true },
            client_name: { type: 'string' },
            client_type: { enum: ['public', 'confidential'] },
            redirect_uris: { type: 'array', items: { type: 'string', format: 'uri' } },
            post_logout_redirect_uris: { type: 'array', items: { type: 'string', format: 'uri' } },
            grant_types: { type: 'array', items: { enum: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code', 'password'] } },
            scope: { type: 'string' },
            token_endpoint_auth_method: { enum: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] },
            backchannel_logout_uri: { type: ['string', 'null'], format: 'uri' },
            dpop_bound_access_tokens: { type: 'boolean' },
            ...clientKeyFields,
            built_in: { type: 'boolean', readOnly: true },
            created_at: { type: 'string', format: 'date-time', readOnly: true },
            updated_at: { type: 'string', format: 'date-time', readOnly: true },
            client_secret: { type: 'string', readOnly: true, description: 'Only in the response that creates it; stored as a hash.' },
          },
        },
        ClientWrite: {
          type: 'object',
          additionalProperties: false,
          properties: {
            client_name: { type: 'string' },
            client_type: { enum: ['public', 'confidential'] },
            redirect_uris: { type: 'array', items: { type: 'string' } },
            post_logout_redirect_uris: { type: 'array', items: { type: 'string' } },
            grant_types: { type: 'array', items: { type: 'string' } },
            scope: { type: 'string' },
            backchannel_logout_uri: { type: 'string', format: 'uri', description: 'OIDC Back-Channel Logout receiver.' },
            dpop_bound_access_tokens: { type: 'boolean', description: 'RFC 9449 §5.2: token requests without a DPoP proof are refused.' },
            token_endpoint_auth_method: {
              enum: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
              description: 'Default: `none` for public clients, `client_secret_basic` otherwise. `private_key_jwt` needs `jwks` or `jwks_uri` and gets no secret.',
            },
            ...clientKeyFields,
          },
        },
        ClientPage: {
          type: 'object',
          properties: {
            count: { type: 'integer' },
            next: { type: ['string', 'null'], format: 'uri' },
            previous: { type: ['string', 'null'], format: 'uri' },
            results: { type: 'array', items: ref('Client') },
          },
          required: ['count', 'next', 'previous', 'results'],
        },
        Resource: {
          type: 'object',
          properties: {
            id: { type: 'integer', readOnly: true, description: '0 for the built-in REST API resource.' },
            identifier: { type: 'string', format: 'uri', maxLength: 512, description: 'RFC 8707 resource indicator: the `resource` parameter, and the tokens\' `aud`.' },
            name: { type: 'string', maxLength: 255 },
            scopes: { type: 'array', items: { type: 'string' }, description: 'The only scopes tokens for this resource can carry.' },
            access_token_ttl: { type: 'integer', minimum: 60, maximum: 86400 },
            access_token_format: { enum: ['jwt', 'opaque'] },
            built_in: { type: 'boolean', readOnly: true },
            created_at: { type: ['string', 'null'], format: 'date-time', readOnly: true },
            updated_at: { type: ['string', 'null'], format: 'date-time', readOnly: true },
          },
          required: ['id', 'identifier', 'name', 'scopes', 'access_token_ttl', 'access_token_format', 'built_in', 'created_at', 'updated_at'],
        },
        ResourceWrite: {
          type: 'object',
          additionalProperties: false,
          properties: {
            identifier: { type: 'string', format: 'uri', description: 'Absolute http(s) URI without a fragment; required on create.' },
            name: { type: 'string', description: 'Defaults to the identifier.' },
            scopes: { type: 'array', items: { type: 'string' }, uniqueItems: true, description: 'RFC 6749 scope tokens, not openid/profile/email/offline_access.' },
            access_token_ttl: { type: 'integer', minimum: 60, maximum: 86400, default: 3600 },
            access_token_format: { enum: ['jwt', 'opaque'], default: 'jwt' },
          },
        },
        ResourcePage: {
          type: 'object',
          properties: {
            count: { type: 'integer' },
            next: { type: ['string', 'null'], format: 'uri' },
            previous: { type: ['string', 'null'], format: 'uri' },
            results: { type: 'array', items: ref('Resource') },
          },
          required: ['count', 'next', 'previous', 'results'],
        },
        Error: {
          type: 'object',
          properties: {
            error: { type: 'string' },
            error_description: { type: 'string' },
            fields: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } },
            detail: { type: 'string', description: 'A refused API JWT: error_description again, under simplejwt\'s name.' },
            code: { type: 'string', enum: ['token_not_valid'], description: 'A refused API JWT, as simplejwt says it.' },
          },
          required: ['error', 'error_description'],
        },
      },
    },
    paths: {
      '/api/users/': {
        get: {
          summary: 'List users (staff)',
          
          parameters: [
            { name: 'page', in: 'query', schema: { type: 'integer', minimum: 1 } },
            { name: 'page_size', in: 'query', schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE } },
            { name: 'search', in: 'query', schema: { type: 'string' }, description: 'Substring of username, email or names.' },
            { name: 'ordering', in: 'query', schema: { type: 'string' }, description: 'Comma-separated fields, `-` for descending.' },
          ],
          responses: { 200: { description: 'A page of users', content: json(ref('UserPage')) }, 400: invalid, 401: unauthorized, 403: forbidden, 404: error('Page past the end.') },
        },
        post: {
          summary: 'Register (anonymous, when registration is open) or create a user (staff)',
          
          requestBody: { required: true, content: json(ref('UserWrite')) },
          responses: { 201: { description: 'Created', content: json(ref('User')) }, 400: invalid, 403: forbidden, 409: error('Username or email taken.') },
        },
      },
      '/api/users/{id}/': {
        parameters: [userId],
        get: { summary: 'Read a user (staff or self)', responses: { 200: { description: 'The user', content: json(ref('User')) }, 401: unauthorized, 404: notFound } },
        put: {
          summary: 'Replace the editable fields (staff or self)',
          
          requestBody: { required: true, content: json(ref('UserWrite')) },
          responses: { 200: { description: 'Updated', content: json(ref('User')) }, 400: invalid, 401: unauthorized, 403: forbidden, 404: notFound, 409: error('Username or email taken.') },
        },
        patch: {
          summary: 'Update some fields (staff or self)',
          
          requestBody: { required: true, content: json(ref('UserWrite')) },
          responses: { 200: { description: 'Updated', content: json(ref('User')) }, 400: invalid, 401: unauthorized, 403: forbidden, 404: notFound, 409: error('Username or email taken.') },
        },
        delete: {
          summary: 'Delete a user and revoke all their sessions and tokens (staff or self)',
          
          responses: { 204: { description: 'Deleted' }, 401: unauthorized, 404: notFound },
        },
      },
      '/auth/me/': {
        get: { summary: "The caller's user", responses: { 200: { description: 'The user', content: json(ref('User')) }, 401: unauthorized, 403: forbidden } },
      },
      '/api/me/password/': {
        post: {
          summary: "Change the caller's password; every other session, grant and token of the caller ends",
          description: 'The current password is checked like a login (wrong guesses count towards the lockout). The grant and login session of the token used for this call survive; API refresh tokens are revoked.',
          
          requestBody: {
            required: true,
            content: form({ type: 'object', additionalProperties: false, properties: { current_password: { type: 'string' }, new_password: { type: 'string' } }, required: ['current_password', 'new_password'] }),
          },
          responses: { 200: { description: 'Changed', content: json(ref('User')) }, 400: invalid, 401: unauthorized, 403: forbidden, 429: error('Too many wrong current passwords (Retry-After).') },
        },
      },
      '/api/me/two-factor/': {
        get: {
          summary: "The caller's two-factor authentication: on or off, unused recovery codes",
          
          responses: { 200: { description: 'Status', content: json(ref('TwoFactorStatus')) }, 401: unauthorized, 403: forbidden },
        },
        delete: {
          summary: 'Turn two-factor authentication off; needs the current password and a code',
          description:
            'The body (JSON or form) holds `password` and `code` (a TOTP code or a recovery code). Both count like login attempts: wrong ones lead to the lockout (429).',
          
          requestBody: {
            required: true,
            content: form({ type: 'object', additionalProperties: false, properties: { password: { type: 'string' }, code: { type: 'string' } }, required: ['password', 'code'] }),
          },
          responses: {
            204: { description: 'Off' },
            400: invalid,
            401: unauthorized,
            403: forbidden,
            409: error('Two-factor authentication is not enabled.'),
            429: error('Too many wrong passwords or codes (Retry-After).'),
          },
        },
      },
      '/api/me/two-factor/enroll/': {
        post: {
          summary: 'Start enrollment: a new TOTP secret, its otpauth URI and a QR code (SVG)',
          description: 'Replaces an unconfirmed enrollment. Nothing changes for sign-in until POST /api/me/two-factor/confirm/ accepts a code.',
          
          responses: {
            200: { description: 'The new secret', content: json(ref('TwoFactorEnrollment')) },
            401: unauthorized,
            403: forbidden,
            409: error('Two-factor authentication is already enabled.'),
          },
        },
      },
      '/api/me/two-factor/confirm/': {
        post: {
          summary: 'Confirm enrollment with a code from the app: two-factor is on, and the recovery codes are returned once',
          
          requestBody: { required: true, content: form({ type: 'object', additionalProperties: false, properties: { code: { type: 'string' } }, required: ['code'] }) },
          responses: {
            200: { description: 'Enabled', content: json(ref('RecoveryCodes')) },
            400: invalid,
            401: unauthorized,
            403: forbidden,
            409: error('No enrollment started, or already enabled.'),
            429: error('Too many wrong codes (Retry-After).'),
          },
        },
      },
      '/api/me/two-factor/recovery-codes/': {
        post: {
          summary: 'Replace the recovery codes (needs a code); the old ones stop working',
          
          requestBody: { required: true, content: form({ type: 'object', additionalProperties: false, properties: { code: { type: 'string' } }, required: ['code'] }) },
          responses: {
            200: { description: 'New codes', content: json(ref('RecoveryCodes')) },
            400: invalid,
            401: unauthorized,
            403: forbidden,
            409: error('Two-factor authentication is not enabled.'),
            429: error('Too many wrong codes (Retry-After).'),
          },
        },
      },
      '/api/me/grants/': {
        get: {
          summary: 'Applications the caller has allowed (grants), with scopes and API resources',
          
          responses: { 200: { description: 'Grants', content: json({ type: 'object', properties: { results: { type: 'array', items: ref('ConnectedApp') } } }) }, 401: unauthorized, 403: forbidden },
        },
      },
      '/api/me/grants/{id}/': {
        delete: {
          summary: 'Revoke one grant with every token and code issued under it',
          
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { 204: { description: 'Revoked' }, 401: unauthorized, 403: forbidden, 404: error('No such grant of the caller.') },
        },
      },
      '/api/me/sessions/': {
        get: {
          summary: "The caller's browser login sessions",
          
          responses: { 200: { description: 'Sessions', content: json({ type: 'object', properties: { results: { type: 'array', items: ref('LoginSession') } } }) }, 401: unauthorized, 403: forbidden },
        },
      },
      '/api/me/sessions/{id}/': {
        delete: {
          summary: 'End one login session (tokens issued under it without offline_access stop working)',
          
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { 204: { description: 'Ended' }, 401: unauthorized, 403: forbidden, 404: error('No such session of the caller.') },
        },
      },
      '/api/token/': {
        post: {
          summary: 'Obtain an access/refresh JWT pair (djangorestframework-simplejwt)',
          description: otpDescription,
          requestBody: {
            required: true,
            content: json({ type: 'object', properties: { username: { type: 'string' }, password: { type: 'string' }, otp: otpField }, required: ['username', 'password'] }),
          },
          responses: { 200: { description: 'Tokens', content: json(ref('TokenPair')) }, 401: passwordDoorRefused, 429: error('Too many failed attempts (Retry-After).') },
        },
      },
      '/api/token/refresh/': {
        post: {
          summary: 'Exchange a refresh JWT (single use) for a new pair',
          requestBody: { required: true, content: json({ type: 'object', properties: { refresh: { type: 'string' } }, required: ['refresh'] }) },
          responses: { 200: { description: 'Tokens', content: json(ref('TokenPair')) }, 400: invalid, 401: error('Invalid, expired, revoked or reused token, or one issued before the password changed or the account was deactivated.') },
        },
      },
      '/api/token/verify/': {
        post: {
          summary: 'Check an access JWT as the API would: signature, expiry, and a user still active with the same password',
          requestBody: { required: true, content: json({ type: 'object', properties: { token: { type: 'string' } }, required: ['token'] }) },
          responses: { 200: { description: 'Valid', content: json({ type: 'object' }) }, 400: invalid, 401: error('Invalid or expired, or the user is gone, inactive or changed their password since.') },
        },
      },
      '/users/register/': {
        post: {
          summary: 'Register (the older provider\'s endpoint; is_active honoured for staff callers only)',
          
          requestBody: {
            required: true,
            content: form({
              type: 'object',
              properties: { username: { type: 'string' }, email: { type: 'string' }, password: { type: 'string' }, confirm_password: { type: 'string' }, is_active: { type: 'boolean' } },
              required: ['username', 'password', 'confirm_password'],
            }),
          },
          responses: { 201: { description: 'Created', content: json(ref('User')) }, 400: invalid, 403: forbidden, 409: error('Username or email taken.') },
        },
      },
      '/users/login/': {
        post: {
          summary: 'Log in (the older provider\'s endpoint): OAuth 2.0 tokens for the first-party client',
          description: otpDescription,
          requestBody: {
            required: true,
            content: form({
              type: 'object',
              properties: { username: { type: 'string' }, email: { type: 'string' }, password: { type: 'string' }, otp: otpField, scope: { type: 'string' } },
              required: ['password'],
            }),
          },
          responses: {
            200: { description: 'Tokens usable at /o/userinfo, introspection and revocation', content: json(ref('OAuthTokens')) },
            401: passwordDoorRefused,
            429: error('Too many failed attempts (Retry-After).'),
          },
        },
      },
      '/api/clients/': {
        get: {
          summary: 'List OAuth clients (staff)',
          
          parameters: [
            { name: 'page', in: 'query', schema: { type: 'integer', minimum: 1 } },
            { name: 'page_size', in: 'query', schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE } },
          ],
          responses: { 200: { description: 'A page of clients', content: json(ref('ClientPage')) }, 400: invalid, 401: unauthorized, 403: staffOnly },
        },
        post: {
          summary: 'Register a client (staff); the secret is in this response only',
          
          requestBody: { required: true, content: json(ref('ClientWrite')) },
          responses: { 201: { description: 'Created', content: json(ref('Client')) }, 400: invalid, 401: unauthorized, 403: staffOnly },
        },
      },
      '/api/clients/{clientId}/': {
        parameters: [clientId],
        get: { summary: 'Read a client (staff)', responses: { 200: { description: 'The client', content: json(ref('Client')) }, 401: unauthorized, 403: staffOnly, 404: clientNotFound } },
        patch: {
          summary: 'Change a client (staff); switching to confidential returns a new secret',
          
          requestBody: { required: true, content: json(ref('ClientWrite')) },
          responses: { 200: { description: 'Updated', content: json(ref('Client')) }, 400: invalid, 401: unauthorized, 403: staffOnly, 404: clientNotFound },
        },
        delete: { summary: 'Delete a client and revoke its tokens (staff)', responses: { 204: { description: 'Deleted' }, 401: unauthorized, 403: staffOnly, 404: clientNotFound } },
      },
      '/api/clients/{clientId}/rotate-secret/': {
        parameters: [clientId],
        post: {
          summary: 'Replace the secret (staff); the old one stops working at once',
          
          responses: { 200: { description: 'The client with its new secret', content: json(ref('Client')) }, 400: invalid, 401: unauthorized, 403: staffOnly, 404: clientNotFound },
        },
      },
      '/api/resources/': {
        get: {
          summary: 'List API resources (staff), the built-in one first',
          
          parameters: [
            { name: 'page', in: 'query', schema: { type: 'integer', minimum: 1 } },
            { name: 'page_size', in: 'query', schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE } },
          ],
          responses: { 200: { description: 'A page of resources', content: json(ref('ResourcePage')) }, 400: invalid, 401: unauthorized, 403: resourceStaffOnly, 404: error('Page past the end.') },
        },
        post: {
          summary: 'Add an API resource (staff)',
          
          requestBody: { required: true, content: json(ref('ResourceWrite')) },
          responses: { 201: { description: 'Created', content: json(ref('Resource')) }, 400: invalid, 401: unauthorized, 403: resourceStaffOnly, 409: error('Identifier taken.') },
        },
      },
      '/api/resources/{id}/': {
        parameters: [resourceId],
        get: { summary: 'Read an API resource (staff)', responses: { 200: { description: 'The resource', content: json(ref('Resource')) }, 401: unauthorized, 403: resourceStaffOnly, 404: resourceNotFound } },
        patch: {
          summary: 'Change an API resource (staff); tokens already issued keep what they carry until they expire',
          
          requestBody: { required: true, content: json(ref('ResourceWrite')) },
          responses: { 200: { description: 'Updated', content: json(ref('Resource')) }, 400: invalid, 401: unauthorized, 403: resourceStaffOnly, 404: resourceNotFound, 409: error('Identifier taken.') },
        },
        delete: { summary: 'Delete an API resource (staff)', responses: { 204: { description: 'Deleted' }, 401: unauthorized, 403: resourceStaffOnly, 404: resourceNotFound } },
      },
      '/api/audit/': {
        get: {
          summary: 'The security audit log, newest first (staff)',
          
          parameters: [
            { name: 'page', in: 'query', schema: { type: 'integer', minimum: 1 } },
            { name: 'page_size', in: 'query', schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE } },
            { name: 'event', in: 'query', schema: { type: 'string' }, description: 'Only this event, e.g. login.failure.' },
          ],
          responses: {
            200: {
              description: 'A page of events: {count, next, previous, results: [{id, at, event, actor, actor_user_id, ip, target_type, target_id, details}]}',
              content: json({ type: 'object' }),
            },
            400: invalid,
            401: unauthorized,
            403: error('Only staff may read the audit log.'),
          },
        },
      },
      '/api/openapi.json': {
        get: { summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1', content: json({ type: 'object' }) } } },
      },
    },
  });
}
