import type { Knex } from 'knex';
import { fastQuery } from '../../storage/fast-query.js';

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

export interface AuditEvent {
  id: number;
  at: string;
  event: string;
  actor: string;
  actor_user_id: number | null;
  ip: string | null;
  target_type: string | null;
  target_id: string | null;
  details: Record<string, unknown> | null;
}

/** An event as stored: epoch milliseconds and JSON text where the API shows a date and an object. */
interface AuditRow extends Omit<AuditEvent, 'at' | 'details'> {
  at: number;
  details: string | null;
}

/** Keys whose values must never reach the log, whatever a caller passes. */
const SECRET_KEYS = /pass|secret|token|code|hash|authorization|cookie/i;

function scrub(details: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!details) return undefined;
  return Object.fromEntries(Object.entries(details).map(([k, v]) => [k, SECRET_KEYS.test(k) ? '[redacted]' : v]));
}

/** The security audit log: who did what, from where, when. Append-only from the app. */
export function createAuditLog(knex: Knex) {
  return {
    async record(event: string, entry: AuditEntry): Promise<void> {
      const details = scrub(entry.details);
      // A prepared statement: every login writes one of these.
      await fastQuery(
        knex,
        'insert into audit_events (at, event, actor, actor_user_id, ip, target_type, target_id, details) values (?, ?, ?, ?, ?, ?, ?, ?)',
        [
          Date.now(),
          event,
          entry.actor.slice(0, 255),
          entry.actorUserId ?? null,
          entry.ip?.slice(0, 64) ?? null,
          entry.targetType ?? null,
          entry.targetId === undefined ? null : String(entry.targetId),
          details ? JSON.stringify(details) : null,
        ],
        'run',
      );
    },

    /** Newest first, optionally one event type. */
    async list({ offset, limit, event }: { offset: number; limit: number; event?: string }): Promise<{ count: number; events: AuditEvent[] }> {
      const filtered = () => (event ? knex('audit_events').where({ event }) : knex('audit_events'));
      const counted = (await filtered().count<{ n: number }[]>({ n: '*' }).first()) as { n: number } | undefined;
      const rows = (await filtered().orderBy('id', 'desc').offset(offset).limit(limit)) as AuditRow[];
      return {
        count: Number(counted?.n ?? 0),
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
