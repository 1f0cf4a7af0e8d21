/**
 * The security audit log at GET /api/audit/: who may read it, its pagination and filter,
 * the events that security-relevant actions leave (with who and from where), and that no
 * password, client secret or token value ever reaches it.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, expect, it } from 'vitest';
import type { User } from '../../src/storage/users.js';
import { adminLogin } from '../helpers/admin.js';
import { formOf, UserAgent } from '../helpers/browserless.js';
import { type Answer } from '../helpers/http.js';
import { makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import type { AuditEvent } from '../../src/core/audit/audit-log.js';
import { describeOnBackends, type ApiPair } from '../helpers/fixture.js';


interface AuditPage {
  count: number;
  next: string | null;
  previous: string | null;
  results: AuditEvent[];
}

const WRONG = `wrong passphrase ${randomBytes(4).toString('hex')}`;
const NEW_PASSWORD = `a brand new passphrase ${randomBytes(4).toString('hex')}`;
const LOCAL_IP = /^(::ffff:)?127\.0\.0\.1$|^::1$/;

describeOnBackends('security audit log over HTTP (%s)', (fx) => {
  let staff: User;
  let staffToken: string;
  /** Every password, secret and token value this suite used or was given. */
  const secrets = new Set<string>([PASSWORD, WRONG, NEW_PASSWORD]);

  beforeAll(async () => {
    staff = await makeUser(fx.server.latchkey, { isStaff: true });
    staffToken = (await apiLogin(staff.username, PASSWORD)).access;
  });

  const call = fx.api;

  async function apiLogin(username: string, password: string): Promise<ApiPair> {
    const pair = await fx.apiLogin(username, password);
    secrets.add(pair.access);
    secrets.add(pair.refresh);
    return pair;
  }

  async function auditPage(query = '', token = staffToken): Promise<{ answer: Answer; page: AuditPage }> {
    const answer = await call('GET', `/api/audit/${query}`, { token });
    expect(answer.status, answer.text).toBe(200);
    return { answer, page: answer.json as unknown as AuditPage };
  }

  /** Every event of one type (newest first), following `next`. */
  async function eventsOf(event: string): Promise<AuditEvent[]> {
    const out: AuditEvent[] = [];
    let { page } = await auditPage(`?event=${encodeURIComponent(event)}&page_size=100`);
    out.push(...page.results);
    while (page.next) {
      const answer = await call('GET', page.next, { token: staffToken });
      page = answer.json as unknown as AuditPage;
      out.push(...page.results);
    }
    return out;
  }

  /** The one event of `event` matching `where`, waiting a little for writes made after the answer. */
  async function findEvent(event: string, where: (e: AuditEvent) => boolean): Promise<AuditEvent> {
    for (let i = 0; i < 40; i++) {
      const found = (await eventsOf(event)).filter(where);
      if (found.length) {
        expect(found, `${event}: more than one match`).toHaveLength(1);
        return found[0]!;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`no ${event} event matched`);
  }

  function expectWhoAndWhere(e: AuditEvent, actor: string, actorUserId?: number): void {
    expect(e.actor).toBe(actor);
    if (actorUserId !== undefined) expect(e.actor_user_id).toBe(actorUserId);
    expect(e.ip ?? '').toMatch(LOCAL_IP);
    expect(Date.parse(e.at)).not.toBeNaN();
  }

  it('answers 401 to anonymous callers and 403 to users who are not staff', async () => {
    const anonymous = await call('GET', '/api/audit/');
    expect(anonymous.status).toBe(401);
    expect(anonymous.text).not.toContain('results');
    const bad = await call('GET', '/api/audit/', { token: 'not-a-token' });
    expect(bad.status).toBe(401);

    const plain = await makeUser(fx.server.latchkey);
    const plainToken = (await apiLogin(plain.username, PASSWORD)).access;
    const refused = await call('GET', '/api/audit/', { token: plainToken });
    expect(refused.status).toBe(403);
    expect(refused.text).not.toContain('results');
    expect((await call('GET', '/api/audit/?event=login.success', { token: plainToken })).status).toBe(403);
  });

  it('pages like Django REST framework for staff: count, next, previous, results (newest first)', async () => {
    // Enough events for three pages of two.
    const user = await makeUser(fx.server.latchkey);
    for (let i = 0; i < 3; i++) await apiLogin(user.username, PASSWORD);

    const { page: first } = await auditPage('?page_size=2');
    expect(Object.keys(first).sort()).toEqual(['count', 'next', 'previous', 'results']);
    expect(first.count).toBeGreaterThanOrEqual(5);
    expect(first.results).toHaveLength(2);
    expect(first.previous).toBeNull();
    expect(first.next).toEqual(expect.stringContaining('page=2'));
    expect(first.results[0]!.id).toBeGreaterThan(first.results[1]!.id);

    const second = (await call('GET', first.next!, { token: staffToken })).json as unknown as AuditPage;
    expect(second.previous).toEqual(expect.stringContaining('page=1'));
    expect(second.results).toHaveLength(2);
    expect(second.results[0]!.id).toBeLessThan(first.results[1]!.id);

    const last = Math.ceil(first.count / 2);
    expect((await call('GET', `/api/audit/?page_size=2&page=${last + 5}`, { token: staffToken })).status).toBe(404);
  });

  it('records sign-ins, account, client, token and key events with actor and IP, and never a secret', async () => {
    // --- sign-in success and failure
    const alice = await makeUser(fx.server.latchkey);
    const pair = await apiLogin(alice.username, PASSWORD);
    const success = await findEvent('login.success', (e) => e.actor_user_id === alice.id);
    expectWhoAndWhere(success, alice.username, alice.id);
    expect(success.details).toMatchObject({ via: 'api_token' });

    const failed = await call('POST', '/api/token/', { json: { username: alice.username, password: WRONG } });
    expect(failed.status).toBe(401);
    const failure = await findEvent('login.failure', (e) => e.actor_user_id === alice.id);
    expectWhoAndWhere(failure, alice.username, alice.id);
    expect(failure.details).toMatchObject({ via: 'api_token', reason: 'wrong_password' });

    const ghost = `ghost_${randomBytes(4).toString('hex')}`;
    expect((await call('POST', '/api/token/', { json: { username: ghost, password: WRONG } })).status).toBe(401);
    const ghostFailure = await findEvent('login.failure', (e) => e.actor === ghost);
    expectWhoAndWhere(ghostFailure, ghost);
    expect(ghostFailure.actor_user_id).toBeNull();

    // --- a password change by the user themself
    const changed = await call('PATCH', `/api/users/${alice.id}/`, {
      token: pair.access,
      json: { password: NEW_PASSWORD, current_password: PASSWORD },
    });
    expect(changed.status, changed.text).toBe(200);
    const passwordChanged = await findEvent('user.password_changed', (e) => e.target_id === String(alice.id));
    expectWhoAndWhere(passwordChanged, alice.username, alice.id);
    expect(passwordChanged).toMatchObject({ target_type: 'user', details: { self: true } });
    await apiLogin(alice.username, NEW_PASSWORD);

    // --- a deletion by staff
    const bob = await makeUser(fx.server.latchkey);
    expect((await call('DELETE', `/api/users/${bob.id}/`, { token: staffToken })).status).toBe(204);
    const deleted = await findEvent('user.deleted', (e) => e.target_id === String(bob.id));
    expectWhoAndWhere(deleted, staff.username, staff.id);
    expect(deleted).toMatchObject({ target_type: 'user', details: { username: bob.username } });

    // --- a client's life over /api/clients/
    const created = await call('POST', '/api/clients/', {
      token: staffToken,
      json: { client_name: 'Audited app', redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] },
    });
    expect(created.status, created.text).toBe(201);
    const clientId = created.json['client_id'] as string;
    const firstSecret = created.json['client_secret'] as string;
    expect(firstSecret).toEqual(expect.any(String));
    secrets.add(firstSecret);
    // A token for the client, so the log is checked against its values too.
    const machine = await call('POST', '/o/token', {
      form: { grant_type: 'client_credentials', client_id: clientId, client_secret: firstSecret },
    });
    expect(machine.status, machine.text).toBe(200);
    secrets.add(machine.json['access_token'] as string);

    const rotated = await call('POST', `/api/clients/${clientId}/rotate-secret/`, { token: staffToken });
    expect(rotated.status, rotated.text).toBe(200);
    const secondSecret = rotated.json['client_secret'] as string;
    expect(secondSecret).toEqual(expect.any(String));
    expect(secondSecret).not.toBe(firstSecret);
    secrets.add(secondSecret);
    expect((await call('DELETE', `/api/clients/${clientId}/`, { token: staffToken })).status).toBe(204);

    for (const event of ['client.created', 'client.secret_rotated', 'client.deleted']) {
      const e = await findEvent(event, (x) => x.target_id === clientId);
      expectWhoAndWhere(e, staff.username, staff.id);
      expect(e.target_type).toBe('client');
    }

    // --- a revocation at /o/token/revocation by the public first-party client
    const legacy = await call('POST', '/users/login/', { form: { username: alice.username, password: NEW_PASSWORD } });
    expect(legacy.status, legacy.text).toBe(200);
    const accessToken = legacy.json['access_token'] as string;
    const refreshToken = legacy.json['refresh_token'] as string;
    secrets.add(accessToken);
    secrets.add(refreshToken);
    const revoked = await call('POST', '/o/token/revocation', {
      form: { token: accessToken, token_type_hint: 'access_token', client_id: 'latchkey-first-party' },
    });
    expect(revoked.status, revoked.text).toBe(200);
    const revocation = await findEvent('token.revoked', (e) => e.target_id === String(alice.id) && e.details?.['kind'] === 'access_token');
    expectWhoAndWhere(revocation, 'latchkey-first-party');
    expect(revocation).toMatchObject({ target_type: 'account', details: { client_id: 'latchkey-first-party' } });
    // The revoked token no longer works.
    expect((await call('GET', '/o/me', { token: accessToken })).status).toBe(401);
    // A second login brings a refresh token of its own to revoke.
    const again = await call('POST', '/users/login/', { form: { username: alice.username, password: NEW_PASSWORD } });
    expect(again.status, again.text).toBe(200);
    secrets.add(again.json['access_token'] as string);
    secrets.add(again.json['refresh_token'] as string);
    const refreshRevoked = await call('POST', '/o/token/revocation', {
      form: { token: again.json['refresh_token'] as string, token_type_hint: 'refresh_token', client_id: 'latchkey-first-party' },
    });
    expect(refreshRevoked.status).toBe(200);
    await findEvent('token.revoked', (e) => e.target_id === String(alice.id) && e.details?.['kind'] === 'refresh_token');

    // --- a key rotation from the admin pages
    const agent = new UserAgent();
    const signedIn = await adminLogin(fx.server.url, agent, staff.username, PASSWORD);
    expect(signedIn.response.status).toBe(200);
    const keysPage = await agent.fetch(`${fx.server.url}/admin/keys`);
    expect(keysPage.status).toBe(200);
    const form = formOf(await keysPage.text(), '/admin/keys/rotate');
    const rotation = await agent.postForm(new URL(form.action, `${fx.server.url}/admin/keys`), { csrf: form.csrf });
    expect(rotation.status).toBe(303);
    const keysRotated = (await eventsOf('keys.rotated'))[0];
    expect(keysRotated).toBeDefined();
    expectWhoAndWhere(keysRotated!, staff.username, staff.id);
    expect(keysRotated!.details).toMatchObject({ added: expect.any(Array), retired: expect.any(Array) });

    // --- ?event= keeps only that event, and its count says so
    for (const event of ['login.success', 'login.failure', 'user.password_changed', 'user.deleted', 'client.created', 'client.secret_rotated', 'client.deleted', 'token.revoked', 'keys.rotated']) {
      const { page } = await auditPage(`?event=${event}&page_size=100`);
      expect(page.count, event).toBeGreaterThan(0);
      expect(page.results.length).toBe(Math.min(page.count, 100));
      expect(page.results.every((e) => e.event === event), event).toBe(true);
    }
    const { page: nothing } = await auditPage('?event=no.such.event');
    expect(nothing).toEqual({ count: 0, next: null, previous: null, results: [] });

    // --- the whole log, every page, holds none of the secrets
    const texts: string[] = [];
    let next: string | null = `${fx.server.url}/api/audit/?page_size=100`;
    let total = 0;
    while (next) {
      const answer = await call('GET', next, { token: staffToken });
      expect(answer.status).toBe(200);
      texts.push(answer.text);
      const page = answer.json as unknown as AuditPage;
      total += page.results.length;
      next = page.next;
    }
    const everything = texts.join('\n');
    expect(total).toBeGreaterThan(10);
    expect(secrets.size).toBeGreaterThan(10);
    for (const secret of secrets) {
      expect(everything.includes(secret), `the audit log contains a secret (${secret.slice(0, 6)}…)`).toBe(false);
    }
    // Nor any password hash.
    expect(everything).not.toMatch(/\$2[aby]\$\d\d\$/);
  });
});
