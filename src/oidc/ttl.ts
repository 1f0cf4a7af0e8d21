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

/**
 * How long a retired signing key stays published: as long as the longest-lived JWT it
 * can have signed (ID tokens; access tokens are opaque), plus a minute of clock skew.
 */
export const RETIRED_KEY_RETENTION_MS = (TTL.IdToken + 60) * 1000;
