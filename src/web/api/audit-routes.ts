import Router from '@koa/router';
import type { AuditLog } from '../../core/audit/audit-log.js';
import { ApiError } from '../../errors.js';
import { type BearerResolver } from './bearer-auth.js';
import { guard, requireUser } from './route-guard.js';
import { pageLinks, pageOf } from './pagination.js';

/** GET /api/audit/: the security audit log for staff, newest first, `?event=` to filter. */
export function createAuditRouter({ audit, resolveBearer, publicUrl }: { audit: AuditLog; resolveBearer: BearerResolver; publicUrl: string }): Router {
  const router = new Router();
  router.get('/api/audit', guard(resolveBearer, { scope: 'admin' }), async (ctx) => {
    if (!requireUser(ctx).isStaff) throw new ApiError(403, 'permission_denied', 'Only staff may read the audit log.');
    const { page, pageSize } = pageOf(ctx);
    const event = typeof ctx.query['event'] === 'string' && ctx.query['event'] ? ctx.query['event'] : undefined;
    const { count, events } = await audit.list({ offset: (page - 1) * pageSize, limit: pageSize, ...(event ? { event } : {}) });
    if (page > 1 && events.length === 0) throw new ApiError(404, 'not_found', 'Invalid page.');
    ctx.body = { count, ...pageLinks(ctx, `${publicUrl}/api/audit/`, page, pageSize, count), results: events };
  });
  return router;
}
