import { decodeJwt } from 'jose';
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import { ApiError } from '../errors.js';
import type { ClientRepository } from '../repositories/clients.js';
import type { User, UserRepository } from '../repositories/users.js';
import { DPOP_SIGNING_ALGORITHMS } from '../oidc/provider.js';
import { API_SCOPE } from '../resources/built-in.js';
import type { ApiTokens } from './api-tokens.js';
import { DpopError, type DpopProofVerifier } from './dpop-proof.js';
import type { VerifyResourceToken } from './resource-access-tokens.js';

/** Who a bearer token speaks for: a user, or only a client (client_credentials). */
export interface Principal {
  user: User | null;
  /** The OAuth client the token was issued to, when it came from /o/token. */
  clientId?: string;
  /** For /o/token access tokens: the grant and the login session they were issued under. */
  grantId?: string;
  sessionUid?: string;
  /** api-jwt: from /api/token/; oauth: opaque, from /o/token; oauth-jwt: RFC 9068 JWT from /o/token. */
  via: 'api-jwt' | 'oauth' | 'oauth-jwt';
  /** RFC 7638 thumbprint of the DPoP key the token is bound to; the request proved it holds that key. */
  jkt?: string;
}

/** A token as a request presented it, with what a DPoP proof check needs. */
export interface PresentedToken {
  /** The Authorization scheme, lower-cased. */
  scheme: 'bearer' | 'dpop';
  token: string;
  /** The DPoP header, if any. */
  proof: string | undefined;
  method: string;
  /** The request path without query, as received (the proof's htu is PUBLIC_URL + path). */
  path: string;
}

class InvalidToken extends ApiError {
  constructor(description: string) {
    super(401, 'invalid_token', description);
  }
}

/** RFC 6750 3.1: a valid token without the scope the API needs. */
class InsufficientScope extends ApiError {
  constructor() {
    super(403, 'insufficient_scope', `The token lacks the "${API_SCOPE}" scope this API needs.`);
  }
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export interface BearerDeps {
  users: UserRepository;
  clients: ClientRepository;
  apiTokens: ApiTokens;
  verifyResourceToken: VerifyResourceToken;
  /** `${PUBLIC_URL}/api`: the only audience this API accepts tokens for. */
  audience: string;
  provider: () => Provider;
  /** Checks DPoP proofs for DPoP-bound tokens (RFC 9449). */
  verifyDpopProof: DpopProofVerifier;
  /** Public base URL: the URL a DPoP proof names is PUBLIC_URL + path, whatever Host said. */
  publicUrl: string;
}

/** Whether a token's `aud` (a string or a list) names `audience`. */
function audienceIncludes(aud: unknown, audience: string): boolean {
  return aud === audience || (Array.isArray(aud) && aud.includes(audience));
}

/** Reads a JWT's claims unverified, only to pick which verifier checks it; garbage is 401. */
function unverifiedClaims(token: string): Record<string, unknown> {
  try {
    return decodeJwt(token);
  } catch {
    throw new InvalidToken('The token is invalid.');
  }
}

/**
 * Resolves `Authorization: Bearer|DPoP` into a {@link Principal}: our API JWTs (verified
 * against our keys), access JWTs the provider issued for the resource `${PUBLIC_URL}/api`
 * (verified against the same keys, offline), or opaque access tokens issued at /o/token
 * (looked up in storage, their grant still alive, and issued for no resource or for ours).
 * Inactive or deleted users are refused like a bad token. A token bound to a DPoP key (its
 * principal has `jkt`) must come with the DPoP scheme and a valid proof from that key; an
 * unbound one with the Bearer scheme.
 */
export function createBearerResolver({ users, clients, apiTokens, verifyResourceToken, audience, provider, verifyDpopProof, publicUrl }: BearerDeps) {
  async function activeUser(sub: string | undefined): Promise<User> {
    const user = sub ? await users.findById(sub) : undefined;
    if (!user || !user.isActive) throw new InvalidToken('The user is inactive or deleted.');
    return user;
  }

  /**
   * The one sender-constraint check for every kind of token: give it the `jkt` the token is
   * bound to (undefined for a bearer token).
   */
  async function checkSenderConstraint(presented: PresentedToken, jkt: string | undefined): Promise<void> {
    if (jkt === undefined) {
      if (presented.scheme === 'dpop') throw new DpopError('invalid_token', 'This token is not DPoP-bound; send it with the Bearer scheme.');
      return;
    }
    if (presented.scheme !== 'dpop') throw new DpopError('invalid_token', 'This token is DPoP-bound; send it with the DPoP scheme and a DPoP proof.');
    await verifyDpopProof({ proof: presented.proof, method: presented.method, url: publicUrl + presented.path, accessToken: presented.token, jkt });
  }

  /**
   * A provider JWT for our API. It cannot be revoked, so what it names is checked on every
   * request: the client must still exist, and the user still be active.
   */
  async function resourceTokenPrincipal(token: string): Promise<Principal> {
    const verified = await verifyResourceToken(token);
    if (!verified.scopes.has(API_SCOPE)) throw new InsufficientScope();
    if (!(await clients.find(verified.clientId))) throw new InvalidToken('The client this token was issued to no longer exists.');
    const user = verified.accountId === null ? null : await activeUser(verified.accountId);
    return { user, clientId: verified.clientId, via: 'oauth-jwt', ...(verified.jkt ? { jkt: verified.jkt } : {}) };
  }

  async function lookUp(token: string): Promise<Principal> {
    if (JWT_SHAPE.test(token)) {
      // Both kinds are signed by our keys for our audience; only /api/token/ JWTs carry
      // token_type and user_id. Each verifier insists on its own shape.
      const claims = unverifiedClaims(token);
      if (claims['token_type'] === undefined && claims['user_id'] === undefined) return resourceTokenPrincipal(token);
      return { user: (await apiTokens.verifyAccess(token)).user, via: 'api-jwt' };
    }
    const p = provider();
    const accessToken = await p.AccessToken.find(token);
    if (!accessToken) {
      // client_credentials tokens are a model of their own; they act for no user.
      const clientToken = await p.ClientCredentials.find(token);
      if (!clientToken || clientToken.isExpired) throw new InvalidToken('The token is invalid, expired or revoked.');
      if (clientToken['x5t#S256']) throw new InvalidToken('Certificate-bound (mTLS) tokens are not accepted here.');
      if (clientToken.aud !== undefined && !audienceIncludes(clientToken.aud, audience)) throw new InvalidToken('The token was issued for another resource.');
      return { user: null, clientId: clientToken.clientId, via: 'oauth', ...(clientToken.jkt ? { jkt: clientToken.jkt } : {}) };
    }
    if (accessToken.isExpired) throw new InvalidToken('The token is invalid, expired or revoked.');
    if (accessToken['x5t#S256']) throw new InvalidToken('Certificate-bound (mTLS) tokens are not accepted here.');
    // Tokens without an audience are the userinfo tokens this API always took; one issued
    // for another API resource (RFC 8707, opaque format) is that API's, not ours.
    if (accessToken.aud !== undefined && !audienceIncludes(accessToken.aud, audience)) throw new InvalidToken('The token was issued for another resource.');
    if (accessToken.grantId && !(await p.Grant.find(accessToken.grantId))) {
      throw new InvalidToken('The token has been revoked.');
    }
    const user = accessToken.accountId ? await activeUser(accessToken.accountId) : null;
    return {
      user,
      clientId: accessToken.clientId,
      ...(accessToken.grantId ? { grantId: accessToken.grantId } : {}),
      ...(accessToken.sessionUid ? { sessionUid: accessToken.sessionUid } : {}),
      via: 'oauth',
      ...(accessToken.jkt ? { jkt: accessToken.jkt } : {}),
    };
  }

  return async function resolve(presented: PresentedToken): Promise<Principal> {
    const principal = await lookUp(presented.token);
    await checkSenderConstraint(presented, principal.jkt);
    return principal;
  };
}

export type BearerResolver = ReturnType<typeof createBearerResolver>;

const DPOP_ALGS = `algs="${DPOP_SIGNING_ALGORITHMS.join(' ')}"`;

/**
 * 401 with an RFC 6750 challenge, or an RFC 9449 `DPoP` one when the request used DPoP or the
 * failure is about DPoP. Without credentials both schemes are offered.
 */
function challenge(ctx: Context, error: ApiError, scheme: 'Bearer' | 'DPoP' | 'both'): never {
  const scope = error instanceof InsufficientScope ? `, scope="${API_SCOPE}"` : '';
  const params = `error="${error.error}", error_description="${error.message.replace(/["\\]/g, "'")}"${scope}`;
  if (scheme === 'DPoP') ctx.set('WWW-Authenticate', `DPoP ${params}, ${DPOP_ALGS}`);
  else ctx.set('WWW-Authenticate', [`Bearer ${params}`, ...(scheme === 'both' ? [`DPoP ${DPOP_ALGS}`] : [])]);
  throw error;
}

const AUTHORIZATION = /^(Bearer|DPoP)\s+(\S+)\s*$/i;

/**
 * Reads `Authorization: Bearer <token>`, or `DPoP <token>` with its `DPoP` proof header; 401
 * with a challenge when the token is missing, bad, or not proven as its binding requires.
 */
export function authenticateBearer(resolve: BearerResolver) {
  return async (ctx: Context, next: Next) => {
    const match = AUTHORIZATION.exec(ctx.get('authorization'));
    if (!match?.[1] || !match[2]) return challenge(ctx, new InvalidToken('Authentication credentials were not provided.'), 'both');
    const scheme = match[1].toLowerCase() === 'dpop' ? 'dpop' : 'bearer';
    // Repeated DPoP headers arrive joined with ", ", which no single JWT matches.
    const proof = ctx.get('dpop') || undefined;
    try {
      ctx.state['principal'] = await resolve({ scheme, token: match[2], proof, method: ctx.method, path: ctx.path });
    } catch (error) {
      if (error instanceof InsufficientScope || (error instanceof ApiError && error.status === 401)) {
        return challenge(ctx, error, error instanceof DpopError || scheme === 'dpop' || proof ? 'DPoP' : 'Bearer');
      }
      throw error;
    }
    return next();
  };
}

/** Same as {@link authenticateBearer}, but anonymous callers pass with no principal. */
export function optionalBearer(resolve: BearerResolver) {
  const required = authenticateBearer(resolve);
  return async (ctx: Context, next: Next) => (ctx.get('authorization') ? required(ctx, next) : next());
}

/** The caller's user; 403 for client-only tokens (client_credentials). */
export function requireUser(ctx: Context): User {
  const principal = ctx.state['principal'] as Principal | undefined;
  if (!principal) throw new InvalidToken('Authentication credentials were not provided.');
  if (!principal.user) throw new ApiError(403, 'permission_denied', 'This token does not act for a user.');
  return principal.user;
}

/** The caller's user when one authenticated, else null. */
export function callerOf(ctx: Context): User | null {
  return (ctx.state['principal'] as Principal | undefined)?.user ?? null;
}
