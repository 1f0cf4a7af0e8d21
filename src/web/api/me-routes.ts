import Router from '@koa/router';
import type { Context } from 'koa';
import { TooManyAttempts } from '../../core/errors.js';
import type { SelfService } from '../../core/accounts/self-service.js';
import { userJson } from '../../core/accounts/user-service.js';
import { type BearerResolver, type Principal } from './bearer-auth.js';
import { guard, requireUser } from './route-guard.js';
import { bodyOf, parseBody } from './body.js';

/**
 * /api/me/: the account-center actions for apps acting for a signed-in person (Keycloak's
 * account REST API, Logto's account API): change password, connected applications (grants),
 * login sessions. Client-only tokens get 403; another person's ids are 404.
 */
export function createMeRouter({ selfService, resolveBearer }: { selfService: SelfService; resolveBearer: BearerResolver }): Router {
  const router = new Router({ prefix: '/api/me' });
  const auth = guard(resolveBearer, { scope: 'account' });
  const principal = (ctx: Context) => ctx.state['principal'] as Principal;

  router.post('/password', auth, parseBody, async (ctx) => {
    const user = requireUser(ctx);
    const { grantId, sessionUid } = principal(ctx);
    try {
      // The app that asked keeps its grant and the login session it came from.
      const updated = await selfService.changePassword(user, bodyOf(ctx), {
        ip: ctx.ip,
        keep: { ...(grantId ? { grantId } : {}), ...(sessionUid ? { sessionUid } : {}) },
      });
      ctx.body = userJson(updated);
    } catch (error) {
      if (error instanceof TooManyAttempts) ctx.set('Retry-After', String(error.retryAfter));
      throw error;
    }
  });

  router.get('/grants', auth, async (ctx) => {
    ctx.body = { results: await selfService.connectedApps(requireUser(ctx)) };
  });

  router.delete('/grants/:id', auth, async (ctx) => {
    await selfService.revokeApp(requireUser(ctx), String(ctx.params['id']), ctx.ip);
    ctx.status = 204;
  });

  router.get('/sessions', auth, async (ctx) => {
    ctx.body = { results: await selfService.sessions(requireUser(ctx), principal(ctx).sessionUid) };
  });

  router.delete('/sessions/:id', auth, async (ctx) => {
    await selfService.endSession(requireUser(ctx), String(ctx.params['id']), ctx.ip);
    ctx.status = 204;
  });

  return router;
}
