import { z } from 'zod';
import type { AuditLog } from '../../core/audit/audit-log.js';
import { ApiError } from '../../errors.js';
import { type BearerResolver } from './bearer-auth.js';
import { apiRouter, operation, type ApiRouter } from './operation.js';
import { pageLinks } from './pagination.js';
import { optionalQueryString, pageOf, PageQuery, timestamp } from './schemas.js';

export const AuditEventSchema = z
  .object({
    id: z.int(),
    at: timestamp(),
    event: z.string().meta({ description: 'What happened, e.g. login.failure, user.updated.' }),
    actor: z.string().meta({ description: 'Who: a username, a client, or "anonymous".' }),
    actor_user_id: z.int().nullable(),
    ip: z.string().nullable(),
    target_type: z.string().nullable(),
    target_id: z.string().nullable(),
    details: z.record(z.string(), z.unknown()).nullable().meta({ description: 'Event-specific facts; never secrets.' }),
  })
  .meta({ id: 'AuditEvent' });

const instant = (description: string) =>
  z.iso
    .datetime({ offset: true })
    .transform((value) => Date.parse(value))
    .optional()
    .meta({ description });

const AuditQuery = PageQuery.extend({
  event: optionalQueryString('Only this event, e.g. login.failure, or a family: login.*.'),
  user_id: z
    .string()
    .regex(/^\d{1,15}$/, 'Enter a user id.')
    .transform(Number)
    .optional()
    .meta({ description: 'Only events by this user, about them, or about their grants.' }),
  client_id: z.string().max(200).optional().meta({ description: 'Only events by this client, about it, or about its grants.' }),
  since: instant('Only events at or after this time (ISO 8601 with an offset, e.g. 2026-12-07T00:00:00Z).'),
  until: instant('Only events before this time (ISO 8601 with an offset).'),
});

/** GET /api/audit/: the security audit log for staff, newest first, filtered by event, user, client and time. */
export function createAuditRouter({ audit, resolveBearer, publicUrl }: { audit: AuditLog; resolveBearer: BearerResolver; publicUrl: string }): ApiRouter {
  return apiRouter(
    [
      operation({
        operationId: 'listAuditEvents',
        method: 'get',
        path: '/api/audit/',
        summary: 'The security audit log, newest first (staff)',
        tags: ['audit'],
        group: 'staff',
        rule: { scope: 'admin' },
        query: AuditQuery,
        success: { status: 200, description: 'A page of events', schema: pageOf('AuditEventPage', AuditEventSchema) },
        errors: { 404: 'Page past the end.' },
        handler: async (ctx, { query: { page, page_size: pageSize, event, user_id: userId, client_id: clientId, since, until } }) => {
          const { count, events } = await audit.list({
            offset: (page - 1) * pageSize,
            limit: pageSize,
            ...(event ? { event } : {}),
            ...(userId !== undefined ? { user: { id: userId } } : {}),
            ...(clientId !== undefined ? { clientId } : {}),
            ...(since !== undefined ? { from: since } : {}),
            ...(until !== undefined ? { to: until } : {}),
          });
          if (page > 1 && events.length === 0) throw new ApiError(404, 'not_found', 'Invalid page.');
          return { count, ...pageLinks(ctx, `${publicUrl}/api/audit/`, page, pageSize, count), results: events };
        },
      }),
    ],
    { resolveBearer, staffRefusal: 'Only staff may read the audit log.' },
  );
}
