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

/** What a listing may be narrowed to; every part is optional and they combine with AND. */
export interface AuditFilter {
  /** One event (`login.failure`), or a family when it ends with `.*` (`login.*`). */
  event?: string;
  /** A person: events they did (`actor_user_id`), events about them (target user, `details.user_id`), or under their name (failed logins). */
  user?: { id?: number; name?: string };
  /** A client: events it did, events about it, grants of it (`details.client_id`). */
  clientId?: string;
  /** Epoch milliseconds, inclusive. */
  from?: number;
  /** Epoch milliseconds, exclusive. */
  to?: number;
}

/** A LIKE pattern matching `text` literally (escape character `\`). */
const literal = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/** SQL for `audit_events` (append-only from the app). */
export function createAuditEventRepository(knex: Knex) {
  return {
    /** A prepared statement: every login writes one of these. */
    async insert(e: NewAuditEvent): Promise<void> {
      await fastQuery(knex, INSERT, [e.at, e.event, e.actor, e.actorUserId, e.ip, e.targetType, e.targetId, e.details], 'run');
    },

    /** Newest first, narrowed by `filter`, with the count of all that match. */
    async list({ offset, limit, ...filter }: { offset: number; limit: number } & AuditFilter): Promise<{ count: number; rows: AuditEventRow[] }> {
      const filtered = () => {
        const q = knex('audit_events');
        const { event, user, clientId, from, to } = filter;
        if (event?.endsWith('.*')) q.whereRaw("event like ? escape '\\'", [`${literal(event.slice(0, -1))}%`]);
        else if (event) q.where({ event });
        if (user && (user.name !== undefined || user.id !== undefined)) {
          const { id, name } = user;
          q.where((w) => {
            if (name !== undefined) w.orWhere('actor', name);
            if (id === undefined) return;
            w.orWhere('actor_user_id', id).orWhere((t) => t.where({ target_type: 'user', target_id: String(id) }));
            // Events about something of theirs (a grant, a group membership) name them in details.user_id.
            for (const end of [',', '}']) w.orWhereRaw("details like ? escape '\\'", [`%${literal(`"user_id":${id}${end}`)}%`]);
          });
        }
        if (clientId !== undefined) {
          q.where((w) =>
            w
              .where('actor', clientId)
              .orWhere((t) => t.where({ target_type: 'client', target_id: clientId }))
              .orWhereRaw("details like ? escape '\\'", [`%${literal(`"client_id":${JSON.stringify(clientId)}`)}%`]),
          );
        }
        if (from !== undefined) q.where('at', '>=', from);
        if (to !== undefined) q.where('at', '<', to);
        return q;
      };
      const counted = (await filtered().count<{ n: number }[]>({ n: '*' }).first()) as { n: number } | undefined;
      const rows = (await filtered().orderBy('id', 'desc').offset(offset).limit(limit)) as AuditEventRow[];
      return { count: Number(counted?.n ?? 0), rows };
    },

    /** The event names recorded so far, for a filter's choices. */
    async eventNames(): Promise<string[]> {
      const rows = (await knex('audit_events').distinct('event').orderBy('event')) as Array<{ event: string }>;
      return rows.map((r) => r.event);
    },
  };
}

export type AuditEventRepository = ReturnType<typeof createAuditEventRepository>;
