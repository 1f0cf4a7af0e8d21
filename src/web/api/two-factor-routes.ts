import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { TooManyAttempts } from '../../core/errors.js';
import type { TwoFactorService } from '../../core/two-factor/settings.js';
import { requestFields } from '../../errors.js';
import { type BearerResolver } from './bearer-auth.js';
import { guard, requireUser } from './route-guard.js';
import { bodyOf, parseBody, parseDeleteBody } from './body.js';

const PATH = '/api/me/two-factor';

/** 400 with a message per missing field, as Django REST framework answers. */
function required(body: Record<string, unknown>, ...names: string[]): void {
  const missing = names.filter((name) => typeof body[name] !== 'string' || body[name] === '');
  if (missing.length) throw requestFields(Object.fromEntries(missing.map((name) => [name, ['This field is required.']])));
}

/** A locked check answers 429 with Retry-After, like the password endpoints. */
async function retryAfter(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (error) {
    if (error instanceof TooManyAttempts) ctx.set('Retry-After', String(error.retryAfter));
    throw error;
  }
}

/**
 * /api/me/two-factor/: the caller's own two-factor authentication (TOTP). Enroll, confirm
 * with a code (the answer holds the recovery codes, shown this once), regenerate recovery
 * codes (needs a code), disable (needs the current password and a code). Client-only tokens
 * get 403. Responses are never cached: they hold secrets.
 */
export function createTwoFactorRouter({ twoFactor, resolveBearer }: { twoFactor: TwoFactorService; resolveBearer: BearerResolver }): Router {
  const router = new Router();
  // The guard also marks every answer no-store: these hold secrets.
  const common = [guard(resolveBearer, { scope: 'account' }), retryAfter];

  router.get(PATH, ...common, async (ctx) => {
    ctx.body = await twoFactor.status(requireUser(ctx));
  });

  router.post(`${PATH}/enroll`, ...common, parseBody, async (ctx) => {
    const body = bodyOf(ctx);
    required(body, 'password');
    ctx.body = await twoFactor.beginEnrollment(requireUser(ctx), { password: body['password'] }, { ip: ctx.ip });
  });

  router.post(`${PATH}/confirm`, ...common, parseBody, async (ctx) => {
    const body = bodyOf(ctx);
    required(body, 'code');
    ctx.body = await twoFactor.confirmEnrollment(requireUser(ctx), body['code'], { ip: ctx.ip });
  });

  router.post(`${PATH}/recovery-codes`, ...common, parseBody, async (ctx) => {
    const body = bodyOf(ctx);
    required(body, 'password', 'code');
    ctx.body = await twoFactor.regenerateRecoveryCodes(requireUser(ctx), { password: body['password'], code: body['code'] }, { ip: ctx.ip });
  });

  router.delete(PATH, ...common, parseDeleteBody, async (ctx) => {
    const body = bodyOf(ctx);
    required(body, 'password', 'code');
    await twoFactor.disable(requireUser(ctx), { password: body['password'], code: body['code'] }, { ip: ctx.ip });
    ctx.status = 204;
  });

  return router;
}
