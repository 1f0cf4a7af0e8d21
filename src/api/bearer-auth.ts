import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import { ApiError } from '../errors.js';
import type { User, UserRepository } from '../repositories/users.js';
import type { ApiTokens } from './api-tokens.js';

/** Who a bearer token speaks for: a user, or only a client (client_credentials). */
export interface Principal {
  user: User | null;
  /** The OAuth client the token was issued to, when it came from /o/token. */
  clientId?: string;
  /** For /o/token access tokens: the grant and the login session they were issued under. */
  grantId?: string;
  sessionUid?: string;
  via: 'api-jwt' | 'oauth';
}

class InvalidToken extends ApiError {
  constructor(description: string) {
    super(401, 'invalid_token', description);
  }
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export interface BearerDeps {
  users: UserRepository;
  apiTokens: ApiTokens;
  provider: () => Provider;
}

/**
 * Resolves `Authorization: Bearer` into a {@link Principal}: our API JWTs (verified against
 * our keys) or access tokens issued at /o/token (looked up in storage, their grant still
 * alive). Inactive or deleted users are refused like a bad token.
 */
export function createBearerResolver({ users, apiTokens, provider }: BearerDeps) {
  async function activeUser(sub: string | undefined): Promise<User> {
    const user = sub ? await users.findById(sub) : undefined;
    if (!user || !user.isActive) throw new InvalidToken('The user is inactive or deleted.');
    return user;
  }

  return async function resolve(token: string): Promise<Principal> {
    if (JWT_SHAPE.test(token)) {
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
      return { user: null, clientId: clientToken.clientId, via: 'oauth' };
    }
    if (accessToken.isExpired) throw new InvalidToken('The token is invalid, expired or revoked.');
    if (accessToken.isSenderConstrained()) throw new InvalidToken('Sender-constrained tokens are not accepted here.');
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
    };
  };
}

export type BearerResolver = ReturnType<typeof createBearerResolver>;

function challenge(ctx: Context, error: ApiError): never {
  ctx.set('WWW-Authenticate', `Bearer error="invalid_token", error_description="${error.message.replace(/"/g, "'")}"`);
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
      if (error instanceof ApiError && error.status === 401) return challenge(ctx, error);
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
