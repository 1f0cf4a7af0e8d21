import type { Context } from 'koa';
import { TooManyAttempts } from '../../core/errors.js';
import type { SelfService } from '../../core/accounts/self-service.js';
import { userJson } from '../../core/accounts/user-service.js';
import { type BearerResolver, type Principal } from './bearer-auth.js';
import { ConnectedAppListSchema, GrantIdParams, LoginSessionListSchema, PasswordChangeSchema, SessionIdParams } from './me-schemas.js';
import { apiRouter, operation, type ApiRouter } from './operation.js';
import { requireUser } from './route-guard.js';
import { UserSchema } from './users-schemas.js';

const TAGS = ['account'];
const rule = { scope: 'account' } as const;

/**
 * /api/me/: the account-center actions for apps acting for a signed-in person (Keycloak's
 * account REST API, Logto's account API): change password, connected applications (grants),
 * login sessions. Client-only tokens get 403; another person's ids are 404.
 */
export function createMeRouter({ selfService, resolveBearer }: { selfService: SelfService; resolveBearer: BearerResolver }): ApiRouter {
  const principal = (ctx: Context) => ctx.state['principal'] as Principal;

  return apiRouter(
    [
      operation({
        operationId: 'changeOwnPassword',
        method: 'post',
        path: '/api/me/password/',
        summary: "Change the caller's password; every other session, grant and token of the caller ends",
        description:
          'The current password is checked like a login (wrong guesses count towards the lockout). The grant and login session of the token used for this call survive; API refresh tokens are revoked.',
        tags: TAGS,
        group: 'user',
        rule,
        body: PasswordChangeSchema,
        form: true,
        success: { status: 200, description: 'Changed', schema: UserSchema },
        errors: { 429: 'Too many wrong current passwords (Retry-After).' },
        handler: async (ctx, { body }) => {
          const user = requireUser(ctx);
          const { grantId, sessionUid } = principal(ctx);
          try {
            // The app that asked keeps its grant and the login session it came from.
            const updated = await selfService.changePassword(user, body, {
              ip: ctx.ip,
              keep: { ...(grantId ? { grantId } : {}), ...(sessionUid ? { sessionUid } : {}) },
            });
            return userJson(updated);
          } catch (error) {
            if (error instanceof TooManyAttempts) ctx.set('Retry-After', String(error.retryAfter));
            throw error;
          }
        },
      }),
      operation({
        operationId: 'listOwnGrants',
        method: 'get',
        path: '/api/me/grants/',
        summary: 'Applications the caller has allowed (grants), with scopes and API resources',
        tags: TAGS,
        group: 'user',
        rule,
        success: { status: 200, description: 'Grants', schema: ConnectedAppListSchema },
        handler: async (ctx) => ({ results: await selfService.connectedApps(requireUser(ctx)) }),
      }),
      operation({
        operationId: 'revokeOwnGrant',
        method: 'delete',
        path: '/api/me/grants/{id}/',
        summary: 'Revoke one grant with every token and code issued under it',
        tags: TAGS,
        group: 'user',
        rule,
        params: GrantIdParams,
        success: { status: 204, description: 'Revoked' },
        errors: { 404: 'No such grant of the caller.' },
        handler: async (ctx, { params }) => {
          await selfService.revokeApp(requireUser(ctx), params.id, ctx.ip);
        },
      }),
      operation({
        operationId: 'listOwnSessions',
        method: 'get',
        path: '/api/me/sessions/',
        summary: "The caller's browser login sessions",
        tags: TAGS,
        group: 'user',
        rule,
        success: { status: 200, description: 'Sessions', schema: LoginSessionListSchema },
        handler: async (ctx) => ({ results: await selfService.sessions(requireUser(ctx), principal(ctx).sessionUid) }),
      }),
      operation({
        operationId: 'endOwnSession',
        method: 'delete',
        path: '/api/me/sessions/{id}/',
        summary: 'End one login session (tokens issued under it without offline_access stop working)',
        tags: TAGS,
        group: 'user',
        rule,
        params: SessionIdParams,
        success: { status: 204, description: 'Ended' },
        errors: { 404: 'No such session of the caller.' },
        handler: async (ctx, { params }) => {
          await selfService.endSession(requireUser(ctx), params.id, ctx.ip);
        },
      }),
    ],
    { resolveBearer },
  );
}
