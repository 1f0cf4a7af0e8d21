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
 * How long a retired signing key stays published: as long as the longest-lived JWT it can
 * have signed (API refresh tokens and ID tokens; OAuth access tokens are opaque), plus a
 * minute of clock skew.
 */
export const RETIRED_KEY_RETENTION_MS = (Math.max(TTL.IdToken, API_TTL.access, API_TTL.refresh) + 60) * 1000;
