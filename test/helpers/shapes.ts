import { decodeJwt, type JWTPayload } from 'jose';
import { expect } from 'vitest';

/**
 * What the values the provider hands out look like on the wire, for tests that check a token
 * or code is the real thing rather than merely present.
 */

/** An opaque node-oidc-provider value (refresh token, authorization code, opaque access token): 32 random bytes, base64url. */
export const OPAQUE_TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** A compact JWS: three base64url parts. */
export const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** An access token as the token endpoint issues it: a JWT when issued for a resource, else opaque. */
export const ACCESS_TOKEN = new RegExp(`${OPAQUE_TOKEN.source}|${JWT.source}`);

/** Asserts `value` is a compact JWT and returns its (unverified) claims. */
export function jwtClaims(value: unknown, what = 'token'): JWTPayload {
  expect(value, `${what} is a JWT`).toMatch(JWT);
  return decodeJwt(value as string);
}

/** A client secret as Latchkey generates one (32 random bytes, base64url); also the CSRF token's shape. */
export const CLIENT_SECRET = /^[A-Za-z0-9_-]{43}$/;
