import { errors, type Configuration, type ResourceServer } from 'oidc-provider';
import { clientApiScopes } from '../core/clients/api-scopes.js';
import type { Resource } from '../core/resources/built-in.js';

/** Looks up the API resource a `resource` parameter names (exact comparison), built-in included. */
export type FindResource = (identifier: string) => Promise<Resource | undefined>;

/** The Django site's resource when every one of `scopes` is its, for a client imported from Django. */
export type DefaultResourceFor = (clientId: string, scopes: string[]) => Promise<Resource | undefined>;

/**
 * What the provider needs to know about a resource: the scopes it offers (requested scopes
 * outside them are dropped from the token), its audience, lifetime and format. JWTs are RFC
 * 9068 access tokens (header `typ: at+jwt`) signed with the provider's current RS256 key, so
 * a resource server verifies them offline against /o/jwks.
 */
export function resourceServerInfo(resource: Resource, allowedScopes?: ReadonlySet<string>): ResourceServer {
  const scopes = allowedScopes ? resource.scopes.filter((scope) => allowedScopes.has(scope)) : resource.scopes;
  return {
    scope: scopes.join(' '),
    audience: resource.identifier,
    accessTokenTTL: resource.accessTokenTtl,
    accessTokenFormat: resource.accessTokenFormat,
    ...(resource.accessTokenFormat === 'jwt' ? { jwt: { sign: { alg: 'RS256' as const } } } : {}),
  };
}

type ResourceIndicatorsFeature = NonNullable<NonNullable<Configuration['features']>['resourceIndicators']>;

/**
 * RFC 8707 on registered resources only: an unknown indicator is `invalid_target`.
 * - `defaultResource`: a request without `resource` gets the opaque, audience-less token
 *   it got before, usable at userinfo; except that an application imported from Django
 *   asking (authorization, device or client_credentials request) for scopes its registration
 *   does not hold, all of them the Django resource's (DOT's `read write`), gets that resource,
 *   as its DOT apps did without knowing RFC 8707 (README "Moving from Django").
 * - `useGrantedResource`: a code, device code or refresh token granted for one resource
 *   yields a token for it at /o/token even without `resource` there (and even with
 *   `openid`), so refreshing keeps the resource.
 * - A client's registered `scope` metadata limits only the OpenID scopes (the library's
 *   rule); resource scopes are limited by what the resource offers, and, where a person is
 *   involved, by what they consented to. Latchkey's own REST API offers a client only the
 *   scopes staff registered it for (`api_scopes`): scopes outside them are dropped before
 *   consent, so nobody is asked to allow them and no token carries them.
 */
export function resourceIndicators(findResource: FindResource, defaultResourceFor?: DefaultResourceFor): ResourceIndicatorsFeature {
  return {
    enabled: true,
    defaultResource: async (ctx, client, oneOf) => {
      if (oneOf) return oneOf;
      const registered = client.scope;
      const requested = ctx.oidc.params?.['scope'];
      // No database read unless the request asks for a scope the client's registration lacks.
      if (!defaultResourceFor || typeof registered !== 'string' || typeof requested !== 'string') return undefined;
      const allowed = new Set(registered.split(' '));
      const outside = requested.split(' ').filter((scope) => scope && !allowed.has(scope));
      if (!outside.length) return undefined;
      return (await defaultResourceFor(client.clientId, outside))?.identifier;
    },
    useGrantedResource: async () => true,
    getResourceServerInfo: async (_ctx, indicator, client) => {
      const resource = await findResource(indicator);
      if (!resource) throw new errors.InvalidTarget('the resource indicator is not a registered API resource');
      return resourceServerInfo(resource, resource.builtIn ? clientApiScopes(client.metadata()) : undefined);
    },
  };
}

/**
 * Lifetime of an access token: its resource's, when it was issued for one, else the
 * provider-wide default (a number in the ttl configuration would override the resource's).
 */
export function resourceAwareTtl(fallback: number) {
  return (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number | undefined } | undefined }) =>
    token.resourceServer?.accessTokenTTL ?? fallback;
}
