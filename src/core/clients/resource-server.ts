/**
 * Client metadata `resource_server_for`: the API resources (RFC 8707 identifiers) this client
 * is the resource server of. Such a client may introspect the access tokens issued for those
 * audiences to other clients (RFC 7662 §2.1: "the protected resource"), as django-oauth-toolkit's
 * resource servers do with their own credentials; tokens for any other audience, refresh
 * tokens and sign-in tokens stay `{"active": false}` to it. Only staff set it (REST, admin,
 * CLI, `import django --resource-server`); dynamic registration may keep it but never set or
 * change it (src/oidc/provider.ts), or any registrant could read everyone's tokens.
 */
export const RESOURCE_SERVER_METADATA = 'resource_server_for';

/** At most this many resources per client: a resource server serves an API or a few. */
const MAX_RESOURCES = 20;

/** The resource identifiers a client's metadata lists (none when absent). */
export function resourceServerFor(metadata: Record<string, unknown>): string[] {
  const value = metadata[RESOURCE_SERVER_METADATA];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/**
 * Why a value cannot be a client's `resource_server_for`, or null when it can: a list of
 * absolute http(s) URLs without fragment. Whether each is a registered resource is the
 * client service's check (it needs the database).
 */
export function resourceServerProblem(value: unknown): string | null {
  if (value === undefined) return null;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) return `${RESOURCE_SERVER_METADATA} must be a list of API resource identifiers`;
  if (value.length > MAX_RESOURCES) return `${RESOURCE_SERVER_METADATA} may list at most ${MAX_RESOURCES} resources`;
  for (const identifier of value as string[]) {
    const url = URL.canParse(identifier) ? new URL(identifier) : undefined;
    if (!url || !['http:', 'https:'].includes(url.protocol) || url.hash || identifier.includes('#')) {
      return `${RESOURCE_SERVER_METADATA}: ${JSON.stringify(identifier)} is not an API resource identifier (an absolute http(s) URL without fragment)`;
    }
  }
  return null;
}
