import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import type { Authenticate } from '../core/accounts/authenticate.js';
import type { ClientRepository } from '../storage/clients.js';
import type { Resource } from '../core/resources/built-in.js';
import { resourceServerInfo } from './resource-indicators.js';

/**
 * The API resource whose scopes are django-oauth-toolkit's, for a client `import django`
 * brought, offering every scope in `scopes`; undefined for any other client.
 */
export type DjangoResourceFor = (clientId: string, scopes: string[]) => Promise<Resource | undefined>;

/** RFC 6749 4.3, kept for the clients of the service Latchkey replaces. Legacy: prefer the code flow. */
export const PASSWORD_GRANT = 'password';

/**
 * The first-party client the legacy `/users/login/` endpoint issues tokens to. Public (no
 * secret to leak from an app), allowed only the password and refresh_token grants.
 */
export const FIRST_PARTY_CLIENT_ID = 'latchkey-first-party';
const FIRST_PARTY_SCOPE = 'openid profile email offline_access';

export interface OAuthTokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token?: string;
  scope: string;
}

type ProviderClient = NonNullable<Awaited<ReturnType<Provider['Client']['find']>>>;

/** Creates the first-party client on first start (idempotent: another process may race us). */
export async function ensureFirstPartyClient(clients: ClientRepository): Promise<void> {
  if (await clients.find(FIRST_PARTY_CLIENT_ID)) return;
  try {
    await clients.insertDraft({
      clientId: FIRST_PARTY_CLIENT_ID,
      clientSecret: null,
      name: 'Latchkey (first-party login)',
      metadata: {
        client_name: 'Latchkey (first-party login)',
        redirect_uris: [],
        post_logout_redirect_uris: [],
        grant_types: [PASSWORD_GRANT, 'refresh_token'],
        response_types: [],
        token_endpoint_auth_method: 'none',
        scope: FIRST_PARTY_SCOPE,
      },
    });
  } catch (error) {
    if (!(await clients.find(FIRST_PARTY_CLIENT_ID))) throw error;
  }
}

/**
 * Issues an access token (and a refresh token when the client may refresh) for a user who
 * proved their password, through the provider's own models, so the tokens work at
 * /o/userinfo, introspection, revocation and the refresh_token grant like any other.
 */
export async function issuePasswordTokens(
  provider: Provider,
  client: ProviderClient,
  accountId: string,
  requestedScope: string | undefined,
  djangoResourceFor?: DjangoResourceFor,
): Promise<OAuthTokenResponse> {
  const allowed = new Set((client.scope ?? FIRST_PARTY_SCOPE).split(' '));
  const requested = (requestedScope ?? [...allowed].join(' ')).split(' ').filter(Boolean);
  const outside = requested.filter((s) => !allowed.has(s));
  // An app imported from django-oauth-toolkit asks for DOT's scopes (`read write`): they are
  // the Django resource's (README "Moving from Django"), granted for that audience only.
  const resource = outside.length ? await djangoResourceFor?.(client.clientId, outside) : undefined;
  const refused = outside.filter((s) => !resource?.scopes.includes(s));
  if (refused.length) throw new errors.InvalidScope('requested scope is not allowed', refused.join(' '));
  const scope = requested.join(' ');
  const oidcScope = requested.filter((s) => allowed.has(s)).join(' ');

  const grant = new provider.Grant({ accountId, clientId: client.clientId });
  if (oidcScope) grant.addOIDCScope(oidcScope);
  if (resource) grant.addResourceScope(resource.identifier, outside.join(' '));
  const grantId = await grant.save();

  const resourceServer = resource ? new provider.ResourceServer(resource.identifier, resourceServerInfo(resource)) : undefined;
  const accessToken = new provider.AccessToken({
    accountId,
    client,
    grantId,
    gty: PASSWORD_GRANT,
    // A token for the Django resource carries its scopes only (the library's rule for resource tokens).
    scope: resource ? outside.join(' ') : scope,
    ...(resourceServer ? { resourceServer } : {}),
  });
  const access = await accessToken.save();
  let refresh: string | undefined;
  if (client.grantTypeAllowed('refresh_token')) {
    const refreshToken = new provider.RefreshToken({
      accountId,
      client,
      grantId,
      gty: PASSWORD_GRANT,
      scope,
      ...(resource ? { resource: resource.identifier } : {}),
      rotations: 0,
      expiresWithSession: false,
    });
    refresh = await refreshToken.save();
  }
  return {
    access_token: access,
    token_type: 'Bearer',
    expires_in: accessToken.expiration,
    ...(refresh ? { refresh_token: refresh } : {}),
    scope: resource ? outside.join(' ') : scope,
  };
}

/**
 * Registers `grant_type=password` at /o/token. The provider lets only clients whose
 * `grant_types` include it get here; wrong credentials are `invalid_grant`. An account with
 * two-factor authentication also needs `otp` (the current TOTP code or a recovery code):
 * without it, or with a wrong one, `invalid_grant` says so.
 */
export function registerPasswordGrant(provider: Provider, authenticate: Authenticate | undefined, djangoResourceFor?: DjangoResourceFor): void {
  provider.registerGrantType(
    PASSWORD_GRANT,
    async (ctx: KoaContextWithOIDC) => {
      // A provider built only to validate client metadata (the CLI) has no authenticator.
      if (!authenticate) throw new Error('the password grant is not served by this process');
      const params = ctx.oidc.params as Record<string, string | undefined>;
      const result = await authenticate(params['username'], params['password'], {
        ip: ctx.ip,
        via: 'password_grant',
        secondFactor: { otp: params['otp'] },
      });
      if (!result.ok && result.reason === 'locked') {
        ctx.set('Retry-After', String(result.retryAfter));
        const error = new errors.CustomOIDCProviderError('temporarily_unavailable', 'too many failed attempts; try again later');
        error.status = 429;
        error.statusCode = 429;
        throw error;
      }
      // InvalidGrant keeps its description to itself; these must reach the client.
      if (!result.ok && result.reason === 'second_factor_required') {
        throw new errors.CustomOIDCProviderError(
          'invalid_grant',
          'two-factor authentication required: send the current code of the authenticator app (or a recovery code) as otp',
        );
      }
      if (!result.ok && result.reason === 'second_factor_invalid') throw new errors.CustomOIDCProviderError('invalid_grant', 'invalid otp');
      if (!result.ok) throw new errors.InvalidGrant('invalid username or password');
      ctx.body = await issuePasswordTokens(provider, ctx.oidc.client!, String(result.user.id), params['scope'], djangoResourceFor);
    },
    ['username', 'password', 'scope', 'otp'],
  );
}
