import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Authenticate } from '../../core/accounts/authenticate.js';
import { userJson, type UserService } from '../../core/accounts/user-service.js';
import { ApiError } from '../../errors.js';
import { FIRST_PARTY_CLIENT_ID, issuePasswordTokens } from '../../oidc/password-grant.js';
import type { ApiTokens } from '../../core/tokens/api-tokens.js';
import { type BearerResolver } from './bearer-auth.js';
import { callerOf, guard } from './route-guard.js';
import { bodyOf, parseBody } from './body.js';

export interface TokenRoutesDeps {
  authenticate: Authenticate;
  apiTokens: ApiTokens;
  userService: UserService;
  provider: () => Provider;
  resolveBearer: BearerResolver;
  allowRegistration: boolean;
}

/** One message for every credential failure, so responses never tell users apart. */
const BAD_CREDENTIALS = () => new ApiError(401, 'invalid_credentials', 'No active account found with the given credentials.');

/**
 * The user behind a password (and, for accounts with two-factor authentication, the `otp`
 * code), or the 401/429 every password endpoint answers.
 */
async function passwordUser(ctx: Context, authenticate: Authenticate, login: unknown, password: unknown, otp: unknown, via: string) {
  const result = await authenticate(login, password, { ip: ctx.ip, via, secondFactor: { otp } });
  if (result.ok) return result.user;
  if (result.reason === 'locked') {
    ctx.set('Retry-After', String(result.retryAfter));
    throw new ApiError(429, 'too_many_requests', 'Too many failed attempts; try again later.');
  }
  if (result.reason === 'second_factor_required') {
    throw new ApiError(401, 'mfa_required', 'This account uses two-factor authentication: send the current code of the authenticator app (or a recovery code) as "otp".');
  }
  if (result.reason === 'second_factor_invalid') throw new ApiError(401, 'invalid_otp', 'The two-factor code is not valid.');
  throw BAD_CREDENTIALS();
}

const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/**
 * The JWT endpoints of djangorestframework-simplejwt (/api/token/, refresh, verify) and the
 * two endpoints of the django-oauth-toolkit service Latchkey replaces (/users/register/,
 * /users/login/).
 */
export function createTokenRouter(deps: TokenRoutesDeps): Router {
  const { authenticate, apiTokens, userService, provider, resolveBearer, allowRegistration } = deps;
  const router = new Router();

  router.post('/api/token', parseBody, async (ctx) => {
    const body = bodyOf(ctx);
    const user = await passwordUser(ctx, authenticate, body['username'], body['password'], body['otp'], 'api_token');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await apiTokens.issue(user.id);
  });

  router.post('/api/token/refresh', parseBody, async (ctx) => {
    const refresh = str(bodyOf(ctx)['refresh']);
    if (!refresh) throw new ApiError(400, 'invalid_request', 'refresh is required.');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await apiTokens.refresh(refresh);
  });

  router.post('/api/token/verify', parseBody, async (ctx) => {
    const token = str(bodyOf(ctx)['token']);
    if (!token) throw new ApiError(400, 'invalid_request', 'token is required.');
    // Not only the signature: the user must still be active, with the password the token was
    // issued under, as at every other use of the token.
    await apiTokens.verifyAccess(token);
    ctx.body = {};
  });

  router.post('/users/register', guard(resolveBearer, { scope: 'users:write', optional: true }), parseBody, async (ctx) => {
    const actor = callerOf(ctx);
    const staff = actor?.isStaff === true;
    if (!staff && !allowRegistration) throw new ApiError(403, 'permission_denied', 'Registration is closed.');
    const body = bodyOf(ctx);
    if (str(body['password']) !== str(body['confirm_password'])) {
      throw new ApiError(400, 'invalid_request', 'The two password fields did not match.');
    }
    // The old endpoint took is_active from staff callers and silently ignored it otherwise.
    const isActive = body['is_active'];
    const input: Record<string, unknown> = {
      username: body['username'],
      password: body['password'],
      ...(str(body['email']) ? { email: body['email'] } : {}),
      ...(staff && isActive !== undefined ? { is_active: isActive === true || isActive === 'true' || isActive === '1' || isActive === 'on' } : {}),
    };
    const user = await userService.create({ user: actor, ip: ctx.ip }, input);
    ctx.status = 201;
    ctx.body = userJson(user);
  });

  router.post('/users/login', parseBody, async (ctx) => {
    const body = bodyOf(ctx);
    const user = await passwordUser(ctx, authenticate, str(body['username']) ?? str(body['email']), body['password'], body['otp'], 'users_login');
    const p = provider();
    const client = await p.Client.find(FIRST_PARTY_CLIENT_ID);
    if (!client) throw new Error('the first-party client is missing');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await issuePasswordTokens(p, client, String(user.id), str(body['scope']));
  });

  return router;
}
