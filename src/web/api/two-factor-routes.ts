import type { Context } from 'koa';
import { TooManyAttempts } from '../../core/errors.js';
import type { TwoFactorService } from '../../core/two-factor/settings.js';
import { type BearerResolver } from './bearer-auth.js';
import { apiRouter, operation, type ApiRouter } from './operation.js';
import { requireUser } from './route-guard.js';
import { ConfirmSchema, EnrollSchema, ProofSchema, RecoveryCodesSchema, TwoFactorEnrollmentSchema, TwoFactorStatusSchema } from './two-factor-schemas.js';

const PATH = '/api/me/two-factor/';
const TAGS = ['two-factor'];
// The guard also marks every answer no-store: these hold secrets.
const rule = { scope: 'account' } as const;

/** A locked check answers 429 with Retry-After, like the password endpoints. */
async function withRetryAfter<T>(ctx: Context, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
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
export function createTwoFactorRouter({ twoFactor, resolveBearer }: { twoFactor: TwoFactorService; resolveBearer: BearerResolver }): ApiRouter {
  return apiRouter(
    [
      operation({
        operationId: 'getTwoFactorStatus',
        method: 'get',
        path: PATH,
        summary: "The caller's two-factor authentication: on or off, unused recovery codes",
        tags: TAGS,
        group: 'user',
        rule,
        success: { status: 200, description: 'Status', schema: TwoFactorStatusSchema },
        handler: (ctx) => twoFactor.status(requireUser(ctx)),
      }),
      operation({
        operationId: 'startTwoFactorEnrollment',
        method: 'post',
        path: `${PATH}enroll/`,
        summary: 'Start enrollment (needs the current password): a new TOTP secret, its otpauth URI and a QR code (SVG)',
        description: 'Replaces an unconfirmed enrollment. Nothing changes for sign-in until POST /api/me/two-factor/confirm/ accepts a code.',
        tags: TAGS,
        group: 'user',
        rule,
        body: EnrollSchema,
        form: true,
        success: { status: 200, description: 'The new secret', schema: TwoFactorEnrollmentSchema },
        errors: { 409: 'Two-factor authentication is already enabled.', 429: 'Too many wrong passwords (Retry-After).' },
        handler: (ctx, { body }) => withRetryAfter(ctx, () => twoFactor.beginEnrollment(requireUser(ctx), { password: body.password }, { ip: ctx.ip })),
      }),
      operation({
        operationId: 'confirmTwoFactorEnrollment',
        method: 'post',
        path: `${PATH}confirm/`,
        summary: 'Confirm enrollment with a code from the app: two-factor is on, and the recovery codes are returned once',
        tags: TAGS,
        group: 'user',
        rule,
        body: ConfirmSchema,
        form: true,
        success: { status: 200, description: 'Enabled', schema: RecoveryCodesSchema },
        errors: { 409: 'No enrollment started, or already enabled.', 429: 'Too many wrong codes (Retry-After).' },
        handler: (ctx, { body }) => withRetryAfter(ctx, () => twoFactor.confirmEnrollment(requireUser(ctx), body.code, { ip: ctx.ip })),
      }),
      operation({
        operationId: 'regenerateRecoveryCodes',
        method: 'post',
        path: `${PATH}recovery-codes/`,
        summary: 'Replace the recovery codes (needs the password and a code); the old ones stop working',
        tags: TAGS,
        group: 'user',
        rule,
        body: ProofSchema,
        form: true,
        success: { status: 200, description: 'New codes', schema: RecoveryCodesSchema },
        errors: { 409: 'Two-factor authentication is not enabled.', 429: 'Too many wrong passwords or codes (Retry-After).' },
        handler: (ctx, { body }) =>
          withRetryAfter(ctx, () => twoFactor.regenerateRecoveryCodes(requireUser(ctx), { password: body.password, code: body.code }, { ip: ctx.ip })),
      }),
      operation({
        operationId: 'disableTwoFactor',
        method: 'delete',
        path: PATH,
        summary: 'Turn two-factor authentication off; needs the current password and a code',
        description: 'The body (JSON or form) holds `password` and `code` (a TOTP code or a recovery code). Both count like login attempts: wrong ones lead to the lockout (429).',
        tags: TAGS,
        group: 'user',
        rule,
        body: ProofSchema,
        form: true,
        success: { status: 204, description: 'Off' },
        errors: { 409: 'Two-factor authentication is not enabled.', 429: 'Too many wrong passwords or codes (Retry-After).' },
        handler: async (ctx, { body }) => {
          await withRetryAfter(ctx, () => twoFactor.disable(requireUser(ctx), { password: body.password, code: body.code }, { ip: ctx.ip }));
        },
      }),
    ],
    { resolveBearer },
  );
}
