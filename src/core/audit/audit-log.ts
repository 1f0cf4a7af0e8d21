import type { Knex } from 'knex';
import { createAuditEventRepository, type AuditEventRow, type AuditFilter } from '../../storage/audit-events.js';

export type { AuditFilter } from '../../storage/audit-events.js';

export interface AuditEntry {
  /** Who acted, in words: a username, a client id, "cli", "anonymous". */
  actor: string;
  actorUserId?: number;
  ip?: string;
  targetType?: string;
  targetId?: string | number;
  /** Extra facts. Never put a password, secret, code or token here. */
  details?: Record<string, unknown>;
}

/** Who is acting, as the services are told by their callers (routes, admin pages, CLI). */
export interface AuditActor {
  label: string;
  userId?: number;
  ip?: string;
}

/** The actor fields of an {@link AuditEntry}. */
export function actorEntry(by: AuditActor | undefined): Pick<AuditEntry, 'actor' | 'actorUserId' | 'ip'> {
  if (!by) return { actor: 'system' };
  return { actor: by.label, ...(by.userId !== undefined ? { actorUserId: by.userId } : {}), ...(by.ip ? { ip: by.ip } : {}) };
}

/** An event as the API shows it: the stored row with an ISO time and the details as an object. */
export interface AuditEvent extends Omit<AuditEventRow, 'at' | 'details'> {
  at: string;
  details: Record<string, unknown> | null;
}

/** Keys whose values must never reach the log, whatever a caller passes. */
const SECRET_KEYS = /pass|secret|token|code|hash|authorization|cookie/i;

function scrub(details: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!details) return undefined;
  return Object.fromEntries(Object.entries(details).map(([k, v]) => [k, SECRET_KEYS.test(k) ? '[redacted]' : v]));
}

/** The security audit log: who did what, from where, when. Append-only from the app. */
export function createAuditLog(knex: Knex) {
  const events = createAuditEventRepository(knex);
  return {
    /** The event names recorded so far. */
    eventNames: () => events.eventNames(),

    async record(event: string, entry: AuditEntry): Promise<void> {
      const details = scrub(entry.details);
      await events.insert({
        at: Date.now(),
        event,
        actor: entry.actor.slice(0, 255),
        actorUserId: entry.actorUserId ?? null,
        ip: entry.ip?.slice(0, 64) ?? null,
        targetType: entry.targetType ?? null,
        targetId: entry.targetId === undefined ? null : String(entry.targetId),
        details: details ? JSON.stringify(details) : null,
      });
    },

    /** Newest first, narrowed by event, person, client and time (see {@link AuditFilter}). */
    async list({ offset, limit, ...filter }: { offset: number; limit: number } & AuditFilter): Promise<{ count: number; events: AuditEvent[] }> {
      const { count, rows } = await events.list({ offset, limit, ...filter });
      return {
        count,
        events: rows.map((r) => ({
          id: Number(r.id),
          at: new Date(Number(r.at)).toISOString(),
          event: r.event,
          actor: r.actor,
          actor_user_id: r.actor_user_id === null ? null : Number(r.actor_user_id),
          ip: r.ip,
          target_type: r.target_type,
          target_id: r.target_id,
          details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null,
        })),
      };
    },
  };
}

export type AuditLog = ReturnType<typeof createAuditLog>;
