import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { createLocalJWKSet, errors as joseErrors, importJWK, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import { createApiRefreshTokenRepository, type InsertRefreshToken } from '../../storage/api-refresh-tokens.js';
import { DomainError } from '../errors.js';
import type { KeyMaterial } from '../keys/key-store.js';
import { API_TTL } from './lifetimes.js';
import type { User, UserRepository } from '../../storage/users.js';

/** JOSE `typ` headers: RFC 9068 for access tokens, our own for refresh tokens. */
export const ACCESS_TYP = 'at+jwt';
export const REFRESH_TYP = 'refresh+jwt';
/** The `token_type` claim each `typ` goes with. */
const TOKEN_TYPES: Record<string, string> = { [ACCESS_TYP]: 'access', [REFRESH_TYP]: 'refresh' };
/** The `client_id` of access tokens minted by /api/token/. */
export const API_CLIENT_ID = 'latchkey-api';
/**
 * The claim carrying the user's auth stamp at issue time (see User.authStamp). Tokens from
 * before the stamp existed have none and count as carrying the initial, empty one.
 */
export const AUTH_STAMP_CLAIM = 'auth_stamp';

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'] as const;

type SigningKey = Awaited<ReturnType<typeof importJWK>>;

export interface ApiTokenPair {
  access: string;
  refresh: string;
}

/** What a refresh answers: a new pair when rotating, a new access token only when not. */
export type ApiRefreshAnswer = ApiTokenPair | { access: string };

export interface ApiTokenDeps {
  knex: Knex;
  issuer: string;
  /** Audience of API tokens: `${PUBLIC_URL}/api`. */
  audience: string;
  keys: () => KeyMaterial;
  /** Who a token names, read on every verification (one indexed read). */
  users: Pick<UserRepository, 'findById'>;
  /**
   * Whether /api/token/refresh/ rotates (the default: single-use refresh tokens with reuse
   * detection) or, as simplejwt's default ROTATE_REFRESH_TOKENS=False, answers a new access
   * token only and lets the refresh token work until it expires (API_ROTATE_REFRESH_TOKENS).
   */
  rotateRefresh?: boolean;
}

/** Public parts only: what /o/jwks publishes and what verification needs. */
export function publicJwks(keys: KeyMaterial): { keys: JWK[] } {
  return {
    keys: keys.jwks.keys.map((jwk) => {
      const copy: Record<string, unknown> = { ...jwk };
      for (const member of PRIVATE_MEMBERS) delete copy[member];
      return copy as JWK;
    }),
  };
}

/**
 * A JWKS for jose's jwtVerify over our published keys, rebuilt only when the key material
 * changes (a rotation replaces the object).
 */
export function localJwksOf(keys: () => KeyMaterial): () => ReturnType<typeof createLocalJWKSet> {
  let builtFor: KeyMaterial | undefined;
  let jwks: ReturnType<typeof createLocalJWKSet> | undefined;
  return () => {
    const current = keys();
    if (builtFor !== current || !jwks) {
      jwks = createLocalJWKSet(publicJwks(current));
      builtFor = current;
    }
    return jwks;
  };
}

/**
 * A refused API JWT. The REST API answers it as djangorestframework-simplejwt does (401
 * invalid_token with `detail` and `code`: src/web/http/error-mapping.ts), since the clients
 * of these endpoints were written against simplejwt.
 */
export class InvalidApiToken extends DomainError {
  constructor(description: string) {
    super('token_not_valid', { detail: description });
    this.name = 'InvalidApiToken';
  }
}

const invalid = (description: string) => new InvalidApiToken(description);

type VerifiedClaims = JWTPayload & { sub: string; jti: string };

/**
 * The REST API's JWTs, shaped like djangorestframework-simplejwt's (`access`, `refresh`,
 * `token_type`, `user_id`) but signed with the provider's current RS256 key, so anyone can
 * verify them against /o/jwks. Refresh tokens are single-use: each one is a row, and a
 * replayed one revokes its whole family (every token descended from one login).
 */
export function createApiTokens({ knex, issuer, audience, keys, users, rotateRefresh = true }: ApiTokenDeps) {
  const refreshTokens = createApiRefreshTokenRepository(knex);
  const signingKeys = new Map<string, SigningKey>();

  async function signingKey(): Promise<{ kid: string; key: SigningKey }> {
    const jwk = keys().jwks.keys.find((k) => k.alg === 'RS256' && !k.key_ops);
    if (!jwk?.kid) throw new Error('no current RS256 signing key');
    let key = signingKeys.get(jwk.kid);
    if (!key) {
      key = await importJWK(jwk, 'RS256');
      signingKeys.set(jwk.kid, key);
    }
    return { kid: jwk.kid, key };
  }

  const jwks = localJwksOf(keys);

  async function sign(claims: JWTPayload, typ: string, ttl: number): Promise<string> {
    const { kid, key } = await signingKey();
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', typ, kid })
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime(`${ttl}s`)
      .sign(key);
  }

  const commonClaims = (user: User) => ({ sub: String(user.id), user_id: user.id, [AUTH_STAMP_CLAIM]: user.authStamp });

  function signAccess(user: User): Promise<string> {
    return sign({ ...commonClaims(user), token_type: 'access', client_id: API_CLIENT_ID, jti: randomBytes(24).toString('base64url') }, ACCESS_TYP, API_TTL.access);
  }

  /** Both tokens carry the stamp of `user` as read: a change after that read ends them too. */
  async function mint(user: User, familyId: string, insert: InsertRefreshToken = refreshTokens.insert): Promise<ApiTokenPair> {
    const userId = user.id;
    const common = commonClaims(user);
    const refreshJti = randomBytes(24).toString('base64url');
    const now = Date.now();
    const access = await signAccess(user);
    const refresh = await sign({ ...common, token_type: 'refresh', jti: refreshJti }, REFRESH_TYP, API_TTL.refresh);
    // Outside a transaction (every login), a prepared statement; inside one, on its connection.
    await insert({ jti: refreshJti, userId, familyId, createdAt: now, expiresAt: now + API_TTL.refresh * 1000 });
    return { access, refresh };
  }

  /**
   * Verifies signature (RS256/ES256 only: never `none` or HMAC), kid, issuer, audience,
   * expiry and the `typ` header; throws InvalidApiToken otherwise.
   */
  async function verifySignature(token: string, typ: string): Promise<VerifiedClaims> {
    try {
      const { payload } = await jwtVerify(token, jwks(), {
        issuer,
        audience,
        typ,
        algorithms: ['RS256', 'ES256'],
        requiredClaims: ['sub', 'exp', 'iat', 'jti'],
      });
      // Access JWTs the provider issues for our API (RFC 8707 resource `${PUBLIC_URL}/api`)
      // share issuer, audience, typ and keys with these; only ours carry token_type.
      if (payload['token_type'] !== TOKEN_TYPES[typ]) throw invalid('The token is invalid.');
      return payload as VerifiedClaims;
    } catch (error) {
      if (error instanceof InvalidApiToken) throw error;
      if (error instanceof joseErrors.JWTExpired) throw invalid('The token has expired.');
      if (error instanceof joseErrors.JOSEError) throw invalid('The token is invalid.');
      throw error;
    }
  }

  /**
   * The user a verified token speaks for: still there, active, and with the auth stamp the
   * token was issued under (a password change or a deactivation since then replaced it).
   */
  async function userOf(payload: VerifiedClaims): Promise<User> {
    const user = await users.findById(payload.sub);
    if (!user?.isActive) throw invalid('The user is inactive or deleted.');
    const stamp = payload[AUTH_STAMP_CLAIM] ?? '';
    if (stamp !== user.authStamp) throw invalid('The token was issued before the password was changed or the account deactivated.');
    return user;
  }

  /** Signature, claims and user: the whole check, for every use of a token. */
  async function verify(token: string, typ: string): Promise<{ payload: VerifiedClaims; user: User }> {
    const payload = await verifySignature(token, typ);
    return { payload, user: await userOf(payload) };
  }

  /** Ends the login a refused refresh token belongs to (its rows would only wait for the sweep). */
  async function revokeFamilyOf(jti: string): Promise<void> {
    await refreshTokens.revokeFamilyOf(jti);
  }

  return {
    /** A new pair for a user who just proved their password (read again: a rehash at login replaced the stamp). */
    async issue(userId: number): Promise<ApiTokenPair> {
      const user = await users.findById(userId);
      if (!user?.isActive) throw invalid('The user is inactive or deleted.');
      return mint(user, randomBytes(24).toString('base64url'));
    },

    /** An access token's claims and the user it speaks for, or a 401 {@link InvalidApiToken}. */
    verifyAccess(token: string): Promise<{ payload: VerifiedClaims; user: User }> {
      return verify(token, ACCESS_TYP);
    },

    /**
     * Exchanges a refresh token for a new pair. The UPDATE marks it used only if nobody did
     * before; when it was used already, the whole family is deleted and the caller gets 401.
     * A token of a user who is gone, inactive or has a new stamp ends its whole family.
     * Not rotating: the token must still be stored (not revoked, not used under rotation
     * before the setting changed) and only a new access token is made.
     */
    async refresh(token: string): Promise<ApiRefreshAnswer> {
      const payload = await verifySignature(token, REFRESH_TYP);
      let user: User;
      try {
        user = await userOf(payload);
      } catch (error) {
        await revokeFamilyOf(payload.jti);
        throw error;
      }
      if (!rotateRefresh) {
        const state = await refreshTokens.stateOf(payload.jti);
        if (state === 'gone') throw invalid('The token has been revoked.');
        if (state === 'used') {
          // Used under rotation (before the setting changed): a replay, answered as one.
          await revokeFamilyOf(payload.jti);
          throw invalid('The token was already used; every token of this login has been revoked.');
        }
        return { access: await signAccess(user) };
      }
      // Claim, revoke-on-reuse and mint in ONE transaction (see the repository's claim): a
      // concurrent reuse waits until the winner's child row is committed, then its family goes.
      const outcome = await refreshTokens.claim(payload.jti, (familyId, insert) => mint(user, familyId, insert));
      if (outcome.kind === 'revoked') throw invalid('The token has been revoked.');
      if (outcome.kind === 'reused') throw invalid('The token was already used; every token of this login has been revoked.');
      return outcome.value;
    },

    /** Ends every API login of a user (deleted, deactivated, password changed). */
    async revokeUser(userId: number): Promise<void> {
      await refreshTokens.revokeUser(userId);
    },
  };
}

export type ApiTokens = ReturnType<typeof createApiTokens>;
