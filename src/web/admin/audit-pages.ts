import type { AuditFilter } from '../../core/audit/audit-log.js';
import { problem, type AdminKit, type Problem } from './kit.js';

const PAGE_SIZE = 50;

/** The filter form as typed: every value comes back to the form as it was. */
interface AuditFormValues {
  event: string;
  user: string;
  client: string;
  from: string;
  to: string;
}

const FIELDS = ['event', 'user', 'client', 'from', 'to'] as const;

/** `2026-12-07`, `2026-12-07T20:30` or `2026-12-07T20:30:15` (what a datetime-local input sends), read as UTC. */
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?$/;

/** Epoch milliseconds for a typed time, or null when it is not one (Feb 30, 25:00 included). */
function instant(value: string): number | null {
  const m = DATE_TIME.exec(value);
  if (!m) return null;
  const [, y, mo, d, h = '00', mi = '00', s = '00'] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const back = new Date(ms).toISOString();
  // Date.UTC rolls 2026-02-30 over to March: only dates that read back the same are real.
  return back.startsWith(`${y}-${mo}-${d}T${h}:${mi}:${s}`) ? ms : null;
}

function pageNumber(raw: unknown): number {
  return typeof raw === 'string' && /^\d{1,6}$/.test(raw) && Number(raw) > 0 ? Number(raw) : 1;
}

/** The audit log for staff: newest first, filtered by event, person, client and time, 50 a page. */
export function addAuditPages({ deps, router, page, requireStaff }: AdminKit): void {
  const { audit, users } = deps;

  /** The storage filter for the typed values, or the problems of each field. */
  async function filterOf(v: AuditFormValues): Promise<AuditFilter | Problem> {
    const fields: Record<string, string[]> = {};
    const filter: AuditFilter = {};
    if (v.event) {
      if (v.event.length > 100 || !/^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?$/i.test(v.event)) fields['event'] = ['Not an event name: use one like login.failure, or login.* for a family.'];
      else filter.event = v.event;
    }
    if (v.user) {
      if (v.user.length > 254) fields['user'] = ['A username has at most 150 characters.'];
      else {
        // A known account by username or email; any other name still finds failed logins typed with it.
        const found = await users.findByLogin(v.user);
        filter.user = found ? { id: found.id, name: found.username } : { name: v.user };
      }
    }
    if (v.client) {
      if (v.client.length > 200) fields['client'] = ['A client ID has at most 200 characters.'];
      else filter.clientId = v.client;
    }
    for (const key of ['from', 'to'] as const) {
      if (!v[key]) continue;
      const ms = instant(v[key]);
      if (ms === null) fields[key] = [`Not a date and time: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC).`];
      else if (key === 'from') filter.from = ms;
      // "To" a day means to its end; "to" a minute includes that minute.
      else filter.to = ms + (v.to.length === 10 ? 86_400_000 : v.to.length === 16 ? 60_000 : 1000);
    }
    if (filter.from !== undefined && filter.to !== undefined && filter.from >= filter.to) fields['to'] = ['The end must come after the start.'];
    return Object.keys(fields).length ? problem(400, 'Please correct the filters marked below.', fields) : filter;
  }

  router.get('/admin/audit', requireStaff, async (ctx) => {
    const raw = (key: string) => {
      const value = ctx.query[key];
      return typeof value === 'string' ? value.trim().slice(0, 300) : '';
    };
    const values = Object.fromEntries(FIELDS.map((k) => [k, raw(k)])) as unknown as AuditFormValues;
    const eventNames = await audit.eventNames();
    const filter = await filterOf(values);
    const base = { title: 'Audit log', values, eventNames };
    if ('status' in filter) {
      return page(ctx, 'audit', { ...base, events: [], count: 0, current: 1, pages: 1, prev: null, next: null, message: filter.message, errors: filter.fields ?? {} }, filter.status);
    }
    let current = pageNumber(ctx.query['page']);
    const query = (n: number) => ({ offset: (n - 1) * PAGE_SIZE, limit: PAGE_SIZE, ...filter });
    let result = await audit.list(query(current));
    const pages = Math.max(1, Math.ceil(result.count / PAGE_SIZE));
    if (current > pages) {
      current = pages;
      result = await audit.list(query(current));
    }
    const kept = Object.fromEntries(FIELDS.filter((k) => values[k]).map((k) => [k, values[k]]));
    const link = (n: number) => `/admin/audit?${new URLSearchParams({ ...kept, page: String(n) }).toString()}`;
    page(ctx, 'audit', {
      ...base,
      filtered: Object.keys(kept).length > 0,
      events: result.events,
      count: result.count,
      current,
      pages,
      prev: current > 1 ? link(current - 1) : null,
      next: current < pages ? link(current + 1) : null,
    });
  });
}
