import type Provider from 'oidc-provider';
import type { ImportedTokenWriter } from '../core/import/django-tokens.js';
import type { Resource } from '../core/resources/built-in.js';
import { resourceServerInfo } from './resource-indicators.js';

/** What the imported tokens say they came from (`gty`); a refresh appends ` refresh_token`. */
const IMPORTED_GRANT_TYPE = 'django_import';

/**
 * Saves django-oauth-toolkit's tokens through the provider's models, so they are the
 * provider's own from then on: stored like its tokens (the value only as its SHA-256, see
 * stored-ids.ts), introspected, revoked and refreshed (rotating into Latchkey's values) like
 * them. Their scopes are the OpenID scopes plus the Django resource's (RFC 8707: the
 * audience is `resource`), held by one grant per user and client.
 */
export function importedTokenWriter(provider: Provider, resource: Resource): ImportedTokenWriter {
  const clientOf = async (clientId: string) => {
    const client = await provider.Client.find(clientId);
    if (!client) throw new Error(`client ${clientId} cannot be loaded by the provider`);
    return client;
  };
  const resourceServer = () => new provider.ResourceServer(resource.identifier, resourceServerInfo(resource));
  /** What both kinds of token carry: DOT's value as the id, who it acts for, the scopes. */
  const tokenBase = async (t: { value: string; accountId: string; clientId: string; grantId: string; scope: string[] }) => ({
    jti: t.value,
    accountId: t.accountId,
    client: await clientOf(t.clientId),
    grantId: t.grantId,
    gty: IMPORTED_GRANT_TYPE,
    scope: t.scope.join(' '),
  });
  return {
    async grant({ accountId, clientId, oidcScope, resourceScope, grantId }) {
      const earlier = grantId ? await provider.Grant.find(grantId) : undefined;
      const grant = earlier && earlier.accountId === accountId && earlier.clientId === clientId ? earlier : new provider.Grant({ accountId, clientId });
      if (oidcScope.length) grant.addOIDCScope(oidcScope.join(' '));
      if (resourceScope.length) grant.addResourceScope(resource.identifier, resourceScope.join(' '));
      return grant.save();
    },
    async accessToken({ value, accountId, clientId, grantId, scope, expiresAt }) {
      const token = new provider.AccessToken({
        ...(await tokenBase({ value, accountId, clientId, grantId, scope })),
        // DOT's own expiry, not ours: the app was told it when DOT issued the token.
        expiresIn: Math.max(1, Math.floor((expiresAt - Date.now()) / 1000)),
        // Only when it carries a resource scope: a token of OpenID scopes alone stays one for userinfo.
        ...(scope.some((s) => resource.scopes.includes(s)) ? { resourceServer: resourceServer() } : {}),
      });
      // The library picks the format when it makes a value; this one keeps DOT's, so it is
      // an opaque token (the Django resource's format), said here.
      (token as unknown as { format: string }).format = 'opaque';
      await token.save();
    },
    async refreshToken({ value, accountId, clientId, grantId, scope }) {
      const token = new provider.RefreshToken({
        ...(await tokenBase({ value, accountId, clientId, grantId, scope })),
        // The refresh yields a token for the Django resource again (useGrantedResource).
        ...(scope.some((s) => resource.scopes.includes(s)) ? { resource: resource.identifier } : {}),
        rotations: 0,
        // DOT's refresh tokens outlive any browser session: so do these (offline_access or not).
        expiresWithSession: false,
      });
      await token.save();
    },
  };
}
