import type { Context } from 'koa';
import { rotateSigningKeys } from '../../core/keys/key-rotation.js';
import { RETIRED_KEY_RETENTION_MS } from '../../core/tokens/lifetimes.js';
import { auditActorOf } from './admin-auth.js';
import { csrfOk, FORM_EXPIRED, problem, type AdminKit, type Problem } from './kit.js';

/** Signing keys: what is published, and a rotation that the running provider picks up at once. */
export function addKeyPages({ deps, router, page, requireStaff, form }: AdminKit): void {
  const { keyStore, host, audit } = deps;

  async function renderKeys(ctx: Context, failure?: Problem): Promise<void> {
    const now = Date.now();
    const keys = (await keyStore.list()).map((key) => ({
      ...key,
      state: key.status === 'current' ? 'current' : key.expiresAt !== null && key.expiresAt > now ? 'retired' : 'expired',
    }));
    page(
      ctx,
      'keys',
      { title: 'Signing keys', keys, retentionHours: Math.round(RETIRED_KEY_RETENTION_MS / 3_600_000), message: failure?.message ?? null },
      failure?.status ?? 200,
    );
  }

  router.get('/admin/keys', requireStaff, (ctx) => renderKeys(ctx));

  router.post('/admin/keys/rotate', requireStaff, form, async (ctx) => {
    if (!csrfOk(ctx)) return renderKeys(ctx, problem(403, FORM_EXPIRED));
    await rotateSigningKeys(keyStore, audit, auditActorOf(ctx));
    // This process starts signing with the new keys now; others follow on their next refresh.
    await host.refresh();
    ctx.status = 303;
    ctx.redirect('/admin/keys?done=keys-rotated');
  });
}
