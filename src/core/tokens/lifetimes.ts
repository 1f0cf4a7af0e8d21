/** Token lifetimes in seconds, kept in one place so key retention can follow them. */
export const TTL = {
  AccessToken: 60 * 60,
  AuthorizationCode: 60,
  ClientCredentials: 10 * 60,
  IdToken: 60 * 60,
  Interaction: 60 * 60,
  RefreshToken: 14 * 24 * 60 * 60,
  Session: 14 * 24 * 60 * 60,
  Grant: 14 * 24 * 60 * 60,
} as const;

/** Lifetimes of the REST API's JWTs (/api/token/), as djangorestframework-simplejwt's defaults. */
export const API_TTL = {
  access: 5 * 60,
  refresh: 24 * 60 * 60,
} as const;

/**
 * Access token lifetimes an API resource may choose (RFC 8707 resources, `resource create
 * --ttl`), and the default.
 */
export const RESOURCE_TTL = {
  min: 60,
  max: 24 * 60 * 60,
  default: 60 * 60,
} as const;

/**
 * How long a retired signing key stays published: as long as the longest-lived JWT it can
 * have signed (API refresh tokens, ID tokens, and JWT access tokens for API resources, which
 * live at most RESOURCE_TTL.max), plus a minute of clock skew.
 */
export const RETIRED_KEY_RETENTION_MS = (Math.max(TTL.IdToken, API_TTL.access, API_TTL.refresh, RESOURCE_TTL.max) + 60) * 1000;
