import type { Context, Middleware, Next } from 'koa';
import { DomainError } from '../../core/errors.js';
import { ApiError } from '../../errors.js';
import { restError, statusOf } from '../http/error-mapping.js';
import { DPOP_SIGNING_ALGORITHMS } from '../../oidc/provider.js';
import type { User } from '../../storage/users.js';
import type { ApiScope } from '../../core/resources/built-in.js';
import { InvalidToken, type BearerResolver, type Principal } from './bearer-auth.js';
import { DpopError } from './dpop-proof.js';

/** Which tokens a route takes: the API scope it needs, and whether a userinfo token will do. */
export interface RouteRule {
  scope: ApiScope;
  /** Userinfo tokens (with `openid`) pass too: /auth/me/, read-only like /o/me. */
  userinfo?: boolean;
  /** Anonymous callers pass with no principal (registration); a token given must still qualify. */
  optional?: boolean;
}

/** RFC 6750 3.1: a valid token that was not issued for what this route does. */
class InsufficientScope extends ApiError {
  readonly scope: ApiScope;
  constructor(scope: ApiScope, description: string) {
    super(403, 'insufficient_scope', description);
    this.scope = scope;
  }
}

/** Refuses a principal whose token does not reach `rule`; first-party credentials reach every route. */
function checkAccess(principal: Principal, rule: RouteRule): void {
  const { access } = principal;
  if (access.kind === 'first-party') return;
  if (access.kind === 'api') {
    if (!access.scopes.has(rule.scope)) throw new InsufficientScope(rule.scope, `This route needs the "${rule.scope}" scope; the token does not carry it.`);
    return;
  }
  if (rule.userinfo && access.scopes.has('openid')) return;
  throw new InsufficientScope(
    rule.scope,
    `This token was issued for signing in (userinfo), not for the REST API: ask for the resource and the "${rule.scope}" scope.`,
  );
}

const DPOP_ALGS = `algs="${DPOP_SIGNING_ALGORITHMS.join(' ')}"`;

/**
 * 401 with an RFC 6750 challenge (403 for insufficient_scope, naming the scope needed), or an
 * RFC 9449 `DPoP` one when the request used DPoP or the failure is about DPoP. Without
 * credentials both schemes are offered.
 */
function challenge(ctx: Context, error: ApiError, scheme: 'Bearer' | 'DPoP' | 'both'): never {
  const scope = error instanceof InsufficientScope ? `, scope="${error.scope}"` : '';
  const params = `error="${error.error}", error_description="${error.message.replace(/["\\]/g, "'")}"${scope}`;
  if (scheme === 'DPoP') ctx.set('WWW-Authenticate', `DPoP ${params}, ${DPOP_ALGS}`);
  else ctx.set('WWW-Authenticate', [`Bearer ${params}`, ...(scheme === 'both' ? [`DPoP ${DPOP_ALGS}`] : [])]);
  throw error;
}

const AUTHORIZATION = /^(Bearer|DPoP)\s+(\S+)\s*$/i;

/** A route guard, carrying its rule so the route table (and OpenAPI) can say what it takes. */
export type Guard = Middleware & { readonly rule: RouteRule };

/**
 * The one guard of every REST route: reads `Authorization: Bearer <token>` (or `DPoP <token>`
 * with its `DPoP` proof header), resolves it, and lets it through only if it reaches `rule`
 * (see {@link TokenAccess}). 401 with a challenge when the token is missing, bad, or not
 * proven as its binding requires; 403 `insufficient_scope` when it is valid but not for
 * this. Answers to authenticated requests are never cached.
 */
export function guard(resolve: BearerResolver, rule: RouteRule): Guard {
  const middleware = async (ctx: Context, next: Next) => {
    const header = ctx.get('authorization');
    if (!header && rule.optional) return next();
    ctx.set('Cache-Control', 'no-store');
    const match = AUTHORIZATION.exec(header);
    if (!match?.[1] || !match[2]) return challenge(ctx, new InvalidToken('Authentication credentials were not provided.'), 'both');
    const scheme = match[1].toLowerCase() === 'dpop' ? 'dpop' : 'bearer';
    // Repeated DPoP headers arrive joined with ", ", which no single JWT matches.
    const proof = ctx.get('dpop') || undefined;
    try {
      const principal = await resolve({ scheme, token: match[2], proof, method: ctx.method, path: ctx.path });
      checkAccess(principal, rule);
      ctx.state['principal'] = principal;
    } catch (thrown) {
      // A refused API JWT comes from the services as a DomainError: answered with its challenge too.
      const error = thrown instanceof DomainError && statusOf(thrown) === 401 ? restError(thrown) : thrown;
      if (error instanceof InsufficientScope || (error instanceof ApiError && error.status === 401)) {
        return challenge(ctx, error, error instanceof DpopError || scheme === 'dpop' || proof ? 'DPoP' : 'Bearer');
      }
      throw error;
    }
    return next();
  };
  return Object.assign(middleware, { rule });
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

/** The caller's principal (after a guard that is not optional). */
export function principalOf(ctx: Context): Principal | undefined {
  return ctx.state['principal'] as Principal | undefined;
}
