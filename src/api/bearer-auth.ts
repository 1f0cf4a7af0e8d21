import { decodeJwt } from 'jose';
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import { ApiError } from '../errors.js';
import type { ClientRepository } from '../repositories/clients.js';
import type { User, UserRepository } from '../repositories/users.js';
import { API_SCOPE } from '../resources/built-in.js';
import type { ApiTokens } from './api-tokens.js';
import type { VerifyResourceToken } from './resource-access-tokens.js';

/** Who a bearer token speaks for: a user, or only a client (client_credentials). */
export interface Principal {
  user: User | null;
  /** The OAuth client the token was issued to, when it came from /o/token. */
  clientId?: string;
  /** api-jwt: from /api/token/; oauth: opaque, from /o/token; oauth-jwt: RFC 9068 JWT from /o/token. */
  via: 'api-jwt' | 'oauth' | 'oauth-jwt';
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
 * Resolves `Authorization: Bearer` into a {@link Principal}: our API JWTs (verified against
 * our keys), access JWTs the provider issued for the resource `${PUBLIC_URL}/api` (verified
 * against the same keys, offline), or opaque access tokens issued at /o/token (looked up in
 * storage, their grant still alive, and issued for no resource or for ours). Inactive or
 * deleted users are refused like a bad token.
 */
export function createBearerResolver({ users, clients, apiTokens, verifyResourceToken, audience, provider }: BearerDeps) {
  async function activeUser(sub: string | undefined): Promise<User> {
    const user = sub ? await users.findById(sub) : undefined;
    if (!user || !user.isActive) throw new InvalidToken('The user is inactive or deleted.');
    return user;
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
    return { user, clientId: verified.clientId, via: 'oauth-jwt' };
  }

  return async function resolve(token: string): Promise<Principal> {
    if (JWT_SHAPE.test(token)) {
      // Both kinds are signed by our keys for our audience; only /api/token/ JWTs carry
      // token_type and user_id. Each verifier insists on its own shape.
      const claims = unverifiedClaims(token);
      if (claims['token_type'] === undefined && claims['user_id'] === undefined) return resourceTokenPrincipal(token);
      const payload = await apiTokens.verifyAccess(token);
      return { user: await activeUser(payload.sub), via: 'api-jwt' };
    }
    const p = provider();
    const accessToken = await p.AccessToken.find(token);
    if (!accessToken) {
      // client_credentials tokens are a model of their own; they act for no user.
      const clientToken = await p.ClientCredentials.find(token);
      if (!clientToken || clientToken.isExpired) throw new InvalidToken('The token is invalid, expired or revoked.');
      if (clientToken.isSenderConstrained()) throw new InvalidToken('Sender-constrained tokens are not accepted here.');
      if (clientToken.aud !== undefined && !audienceIncludes(clientToken.aud, audience)) throw new InvalidToken('The token was issued for another resource.');
      return { user: null, clientId: clientToken.clientId, via: 'oauth' };
    }
    if (accessToken.isExpired) throw new InvalidToken('The token is invalid, expired or revoked.');
    if (accessToken.isSenderConstrained()) throw new InvalidToken('Sender-constrained tokens are not accepted here.');
    // Tokens without an audience are the userinfo tokens this API always took; one issued
    // for another API resource (RFC 8707, opaque format) is that API's, not ours.
    if (accessToken.aud !== undefined && !audienceIncludes(accessToken.aud, audience)) throw new InvalidToken('The token was issued for another resource.');
    if (accessToken.grantId && !(await p.Grant.find(accessToken.grantId))) {
      throw new InvalidToken('The token has been revoked.');
    }
    const user = accessToken.accountId ? await activeUser(accessToken.accountId) : null;
    return { user, clientId: accessToken.clientId, via: 'oauth' };
  };
}

export type BearerResolver = ReturnType<typeof createBearerResolver>;

function challenge(ctx: Context, error: ApiError): never {
  const scope = error instanceof InsufficientScope ? `, scope="${API_SCOPE}"` : '';
  ctx.set('WWW-Authenticate', `Bearer error="${error.error}", error_description="${error.message.replace(/"/g, "'")}"${scope}`);
  throw error;
}

/** Reads the bearer token; 401 with a Bearer challenge when it is missing or bad. */
export function authenticateBearer(resolve: BearerResolver) {
  return async (ctx: Context, next: Next) => {
    const header = ctx.get('authorization');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) return challenge(ctx, new InvalidToken('Authentication credentials were not provided.'));
    try {
      ctx.state['principal'] = await resolve(match[1]);
    } catch (error) {
      if (error instanceof InsufficientScope || (error instanceof ApiError && error.status === 401)) return challenge(ctx, error);
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
