import type { Knex } from 'knex';
import { fastQuery } from './fast-query.js';

/** An event to append to `audit_events`; `details` is JSON text. */
export interface NewAuditEvent {
  at: number;
  event: string;
  actor: string;
  actorUserId: number | null;
  ip: string | null;
  targetType: string | null;
  targetId: string | null;
  details: string | null;
}

/** A row of `audit_events` as stored: epoch milliseconds, details as JSON text. */
export interface AuditEventRow {
  id: number;
  at: number;
  event: string;
  actor: string;
  actor_user_id: number | null;
  ip: string | null;
  target_type: string | null;
  target_id: string | null;
  details: string | null;
}

const INSERT = 'insert into audit_events (at, event, actor, actor_user_id, ip, target_type, target_id, details) values (?, ?, ?, ?, ?, ?, ?, ?)';

/** SQL for `audit_events` (append-only from the app). */
export function createAuditEventRepository(knex: Knex) {
  return {
    /** A prepared statement: every login writes one of these. */
    async insert(e: NewAuditEvent): Promise<void> {
      await fastQuery(knex, INSERT, [e.at, e.event, e.actor, e.actorUserId, e.ip, e.targetType, e.targetId, e.details], 'run');
    },

    /** Newest first, optionally one event type, with the count of all that match. */
    async list({ offset, limit, event }: { offset: number; limit: number; event?: string }): Promise<{ count: number; rows: AuditEventRow[] }> {
      const filtered = () => (event ? knex('audit_events').where({ event }) : knex('audit_events'));
      const counted = (await filtered().count<{ n: number }[]>({ n: '*' }).first()) as { n: number } | undefined;
      const rows = (await filtered().orderBy('id', 'desc').offset(offset).limit(limit)) as AuditEventRow[];
      return { count: Number(counted?.n ?? 0), rows };
    },
  };
}

export type AuditEventRepository = ReturnType<typeof createAuditEventRepository>;
