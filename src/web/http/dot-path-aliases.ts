/**
 * django-oauth-toolkit's endpoint paths (its `oauth2_provider.urls`, mounted at /o/), and the
 * node-oidc-provider route that answers each: the clients of the service Latchkey replaces keep
 * the URLs they were configured with. Paths are inside the provider's mount (/o).
 */
const DOT_PATHS: ReadonlyMap<string, string> = new Map([
  ['/authorize', '/auth'],
  ['/authorize/', '/auth'],
  ['/token/', '/token'],
  ['/introspect', '/token/introspection'],
  ['/introspect/', '/token/introspection'],
  ['/revoke_token', '/token/revocation'],
  ['/revoke_token/', '/token/revocation'],
  ['/userinfo', '/me'],
  ['/userinfo/', '/me'],
]);

/** The provider's own path for a path inside its mount: DOT's names map to the route that answers them. */
export function providerPathFor(inner: string): string {
  return DOT_PATHS.get(inner) ?? inner;
}
