import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import type { Authenticate } from '../../core/accounts/authenticate.js';
import { userJson, type UserService } from '../../core/accounts/user-service.js';
import { ApiError } from '../../errors.js';
import { FIRST_PARTY_CLIENT_ID, issuePasswordTokens } from '../../oidc/password-grant.js';
import type { ApiTokens } from '../../core/tokens/api-tokens.js';
import { type BearerResolver } from './bearer-auth.js';
import { apiRouter, operation, type ApiRouter } from './operation.js';
import { callerOf } from './route-guard.js';
import { LegacyLoginSchema, LegacyRegisterSchema, OAuthTokensSchema, TokenObtainSchema, TokenPairSchema, TokenRefreshAnswerSchema, TokenRefreshSchema, TokenVerifySchema } from './token-schemas.js';
import { UserSchema } from './users-schemas.js';

export interface TokenRoutesDeps {
  authenticate: Authenticate;
  apiTokens: ApiTokens;
  userService: UserService;
  provider: () => Provider;
  resolveBearer: BearerResolver;
  allowRegistration: boolean;
}

/** One message for every credential failure, so responses never tell users apart (simplejwt's words). */
const BAD_CREDENTIALS = () => new ApiError(401, 'invalid_credentials', 'No active account found with the given credentials');
/** /users/login/ was django-oauth-toolkit's password grant: its clients read RFC 6749's `invalid_grant` (oauthlib's words). */
const BAD_GRANT = () => new ApiError(400, 'invalid_grant', 'Invalid credentials given.');

/**
 * The user behind a password (and, for accounts with two-factor authentication, the `otp`
 * code), or the 401/429 every password endpoint answers.
 */
async function passwordUser(ctx: Context, authenticate: Authenticate, login: unknown, password: unknown, otp: unknown, via: string, refused = BAD_CREDENTIALS) {
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
  throw refused();
}

const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

const TAGS = ['tokens'];
const OTP_DESCRIPTION =
  'Accounts with two-factor authentication must also send `otp`: without it the answer is 401 `mfa_required`, with a wrong one 401 `invalid_otp` (counted towards the lockout).';
const PASSWORD_REFUSED = '`invalid_credentials` (wrong username or password, one generic message), `mfa_required` (two-factor account, no `otp`) or `invalid_otp`.';
const LOCKED = 'Too many failed attempts (Retry-After).';

/**
 * The JWT endpoints of djangorestframework-simplejwt (/api/token/, refresh, verify) and the
 * two endpoints of the django-oauth-toolkit service Latchkey replaces (/users/register/,
 * /users/login/).
 */
export function createTokenRouter(deps: TokenRoutesDeps): ApiRouter {
  const { authenticate, apiTokens, userService, provider, resolveBearer, allowRegistration } = deps;
  // A closed registration says so before anything about the body.
  const registrationOpen = async (ctx: Context) => {
    if (callerOf(ctx)?.isStaff !== true && !allowRegistration) throw new ApiError(403, 'permission_denied', 'Registration is closed.');
  };

  return apiRouter(
    [
      operation({
        operationId: 'obtainTokenPair',
        method: 'post',
        path: '/api/token/',
        summary: 'Obtain an access/refresh JWT pair (djangorestframework-simplejwt)',
        description: OTP_DESCRIPTION,
        tags: TAGS,
        group: 'public',
        body: TokenObtainSchema,
        form: true,
        success: { status: 200, description: 'Tokens', schema: TokenPairSchema },
        errors: { 400: 'A field missing or blank (its message under the field, as simplejwt answers).', 401: PASSWORD_REFUSED, 429: LOCKED },
        handler: async (ctx, { body }) => {
          const user = await passwordUser(ctx, authenticate, body.username, body.password, body.otp, 'api_token');
          ctx.set('Cache-Control', 'no-store');
          return apiTokens.issue(user.id);
        },
      }),
      operation({
        operationId: 'refreshTokenPair',
        method: 'post',
        path: '/api/token/refresh/',
        summary: 'Exchange a refresh JWT (single use) for a new pair, or for a new access JWT when API_ROTATE_REFRESH_TOKENS is off',
        tags: TAGS,
        group: 'public',
        body: TokenRefreshSchema,
        form: true,
        success: { status: 200, description: 'Tokens', schema: TokenRefreshAnswerSchema },
        errors: { 401: 'Invalid, expired, revoked or reused token, or one issued before the password changed or the account was deactivated.' },
        handler: async (ctx, { body }) => {
          ctx.set('Cache-Control', 'no-store');
          return apiTokens.refresh(body.refresh);
        },
      }),
      operation({
        operationId: 'verifyAccessToken',
        method: 'post',
        path: '/api/token/verify/',
        summary: 'Check an access JWT as the API would: signature, expiry, and a user still active with the same password',
        tags: TAGS,
        group: 'public',
        body: TokenVerifySchema,
        form: true,
        success: { status: 200, description: 'Valid', schema: z.object({}).meta({ description: 'An empty object.' }) },
        errors: { 401: 'Invalid or expired, or the user is gone, inactive or changed their password since.' },
        handler: async (_ctx, { body }) => {
          // Not only the signature: the user must still be active, with the password the token was
          // issued under, as at every other use of the token.
          await apiTokens.verifyAccess(body.token);
          return {};
        },
      }),
      operation({
        operationId: 'registerLegacy',
        method: 'post',
        path: '/users/register/',
        summary: "Register (the older provider's endpoint; is_active honoured for staff callers only)",
        tags: TAGS,
        group: 'public',
        rule: { scope: 'users:write', optional: true },
        body: LegacyRegisterSchema,
        form: true,
        before: registrationOpen,
        success: { status: 201, description: 'Created', schema: UserSchema },
        errors: { 400: 'Invalid input (`fields` names each bad field), or the two password fields did not match.', 403: 'Registration is closed.', 409: 'Username or email taken.' },
        handler: async (ctx, { body }) => {
          const actor = callerOf(ctx);
          const staff = actor?.isStaff === true;
          if (str(body.password) !== str(body.confirm_password)) throw new ApiError(400, 'invalid_request', 'The two password fields did not match.');
          // The old endpoint took is_active from staff callers and silently ignored it otherwise.
          const isActive = body.is_active;
          const input: Record<string, unknown> = {
            username: body.username,
            password: body.password,
            ...(str(body.email) ? { email: body.email } : {}),
            ...(staff && isActive !== undefined ? { is_active: isActive === true || isActive === 'true' || isActive === '1' || isActive === 'on' } : {}),
          };
          return userJson(await userService.create({ user: actor, ip: ctx.ip }, input));
        },
      }),
      operation({
        operationId: 'loginLegacy',
        method: 'post',
        path: '/users/login/',
        summary: "Log in (the older provider's endpoint): OAuth 2.0 tokens for the first-party client",
        description: OTP_DESCRIPTION,
        tags: TAGS,
        group: 'public',
        body: LegacyLoginSchema,
        form: true,
        success: { status: 200, description: 'Tokens usable at /o/userinfo, introspection and revocation', schema: OAuthTokensSchema },
        errors: {
          400: 'Wrong username, email or password, or an inactive account (`invalid_grant`, one generic message, as the password grant answers), or a scope the first-party client may not ask for (`invalid_scope`).',
          401: '`mfa_required` (two-factor account, no `otp`) or `invalid_otp`.',
          429: LOCKED,
        },
        handler: async (ctx, { body }) => {
          const user = await passwordUser(ctx, authenticate, str(body.username) ?? str(body.email), body.password, body.otp, 'users_login', BAD_GRANT);
          const p = provider();
          const client = await p.Client.find(FIRST_PARTY_CLIENT_ID);
          if (!client) throw new Error('the first-party client is missing');
          ctx.set('Cache-Control', 'no-store');
          return issuePasswordTokens(p, client, String(user.id), str(body.scope));
        },
      }),
    ],
    { resolveBearer },
  );
}
