import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import type { User } from '../../src/storage/users.js';
import { UserAgent } from '../helpers/browserless.js';
import { basic, useClientsApi } from '../helpers/clients-api.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { type Answer } from '../helpers/http.js';
import { discover, loginAndExchange, makeClient, PASSWORD } from '../helpers/rp.js';

/**
 * Groups over REST (/api/groups/, staff with the `admin` scope): who may call it, per-field
 * 400s, 404 and 409, members, the audit trail, and the `groups` claim of tokens issued after
 * an edit (access tokens issued before keep their snapshot).
 */

type Json = Record<string, unknown>;
interface GroupJson {
  id: number;
  name: string;
  permissions: string[];
  created_at: string;
  updated_at: string;
}

const asGroup = (answer: Answer) => answer.json as unknown as GroupJson;
const fieldsOf = (answer: Answer) => (answer.json['fields'] ?? {}) as Record<string, string[]>;
const uniqueName = () => `team-${randomBytes(4).toString('hex')}`;

describeOnBackends('groups over REST (%s)', (fx) => {
  const ctx = useClientsApi(fx);
  const api = fx.api;
  let member: User;

  async function create(body: Json): Promise<GroupJson> {
    const answer = await api('POST', '/api/groups/', { token: ctx.staffToken, json: body });
    expect(answer.status, answer.text).toBe(201);
    return asGroup(answer);
  }

  async function auditEvents(event: string): Promise<Array<{ actor: string; target_id: string | null; details: Json | null }>> {
    const answer = await api('GET', `/api/audit/?event=${event}&page_size=100`, { token: ctx.staffToken });
    expect(answer.status, answer.text).toBe(200);
    return answer.json['results'] as Array<{ actor: string; target_id: string | null; details: Json | null }>;
  }

  beforeAll(async () => {
    member = await fx.makeUser();
  });

  describe('who may call it', () => {
    const routes = (id: number) => [
      { method: 'GET', path: '/api/groups/' },
      { method: 'POST', path: '/api/groups/', json: { name: uniqueName() } },
      { method: 'GET', path: `/api/groups/${id}/` },
      { method: 'PATCH', path: `/api/groups/${id}/`, json: { name: uniqueName() } },
      { method: 'DELETE', path: `/api/groups/${id}/` },
      { method: 'GET', path: `/api/groups/${id}/members/` },
      { method: 'POST', path: `/api/groups/${id}/members/`, json: { user_id: member.id } },
      { method: 'DELETE', path: `/api/groups/${id}/members/${member.id}/` },
    ];

    it('anonymous and garbage tokens get 401, non-staff 403 permission_denied, a token without the admin scope 403 insufficient_scope; nothing changes', async () => {
      const group = await create({ name: uniqueName(), permissions: ['blog.add_post'] });
      await api('POST', `/api/groups/${group.id}/members/`, { token: ctx.staffToken, json: { user_id: member.id } });
      for (const route of routes(group.id)) {
        const opts = route.json ? { json: route.json } : {};
        const anonymous = await api(route.method, route.path, opts);
        expect(anonymous.status, `${route.method} ${route.path} ${anonymous.text}`).toBe(401);
        expect(anonymous.json['error']).toEqual(expect.any(String));
        const garbage = await api(route.method, route.path, { ...opts, token: 'not-a-token' });
        expect(garbage.status).toBe(401);
        const plain = await api(route.method, route.path, { ...opts, token: ctx.plainToken });
        expect(plain.status, plain.text).toBe(403);
        expect(plain.json).toMatchObject({ error: 'permission_denied', error_description: 'Only staff may manage groups.' });
        // A client_credentials token acts for no person: no staff member behind it.
        const machine = await api(route.method, route.path, { ...opts, token: ctx.machineToken });
        expect(machine.status, machine.text).toBe(403);
        const bare = await api(route.method, route.path, { ...opts, token: ctx.bareMachineToken });
        expect(bare.status, bare.text).toBe(403);
        expect(bare.json['error']).toBe('insufficient_scope');
        expect(bare.headers.get('www-authenticate') ?? '').toMatch(/^Bearer error="insufficient_scope".*scope="admin"/);
      }
      const after = await api('GET', `/api/groups/${group.id}/`, { token: ctx.staffToken });
      expect(asGroup(after)).toMatchObject({ name: group.name, permissions: ['blog.add_post'] });
      const members = await api('GET', `/api/groups/${group.id}/members/`, { token: ctx.staffToken });
      expect(members.json['results']).toEqual([{ id: member.id, username: member.username }]);
    });

    it('a staff member signed in at an app without the admin scope gets 403 insufficient_scope', async () => {
      const { client, clientSecret } = await makeClient(fx.server.latchkey, { apiScopes: ['users:read'] });
      const config = await discover(fx.server.issuer, client.clientId, clientSecret ?? null);
      const { tokens } = await loginAndExchange(config, new UserAgent(), { username: ctx.staff.username, password: PASSWORD }, { resource: `${fx.server.latchkey.config.publicUrl}/api`, scope: 'openid users:read', prompt: 'consent' });
      expect(decodeJwt(tokens.access_token)).toMatchObject({ scope: expect.stringContaining('users:read') });
      const answer = await api('GET', '/api/groups/', { token: tokens.access_token });
      expect(answer.status, answer.text).toBe(403);
      expect(answer.json['error']).toBe('insufficient_scope');
    });
  });

  describe('staff', () => {
    it('create, read, list (paged), update, delete, each audited', async () => {
      const name = uniqueName();
      const created = await api('POST', '/api/groups/', { token: ctx.staffToken, json: { name, permissions: ['blog.change_post', 'blog.add_post', 'blog.add_post'] } });
      expect(created.status, created.text).toBe(201);
      const group = asGroup(created);
      expect(created.headers.get('location')).toBe(`/api/groups/${group.id}/`);
      expect(Object.keys(group).sort()).toEqual(['created_at', 'id', 'name', 'permissions', 'updated_at']);
      expect(group).toMatchObject({ name, permissions: ['blog.add_post', 'blog.change_post'] });

      expect(asGroup(await api('GET', `/api/groups/${group.id}/`, { token: ctx.staffToken }))).toEqual(group);

      await create({ name: uniqueName() });
      const page = await api('GET', '/api/groups/?page_size=1', { token: ctx.staffToken });
      expect(page.status, page.text).toBe(200);
      expect(page.json['count']).toBeGreaterThanOrEqual(2);
      expect((page.json['results'] as unknown[]).length).toBe(1);
      expect(page.json['next']).toMatch(/\/api\/groups\/\?page_size=1&page=2$/);
      expect(page.json['previous']).toBeNull();
      const past = await api('GET', '/api/groups/?page=9999', { token: ctx.staffToken });
      expect(past.status).toBe(404);

      const renamed = `${name}-renamed`;
      const patched = await api('PATCH', `/api/groups/${group.id}/`, { token: ctx.staffToken, json: { name: renamed } });
      expect(patched.status, patched.text).toBe(200);
      expect(asGroup(patched)).toMatchObject({ id: group.id, name: renamed, permissions: ['blog.add_post', 'blog.change_post'] });
      const perms = await api('PATCH', `/api/groups/${group.id}/`, { token: ctx.staffToken, json: { permissions: ['shop.view_order'] } });
      expect(asGroup(perms)).toMatchObject({ name: renamed, permissions: ['shop.view_order'] });

      const deleted = await api('DELETE', `/api/groups/${group.id}/`, { token: ctx.staffToken });
      expect(deleted.status, deleted.text).toBe(204);
      expect((await api('GET', `/api/groups/${group.id}/`, { token: ctx.staffToken })).status).toBe(404);

      const mine = (events: Awaited<ReturnType<typeof auditEvents>>) => events.filter((e) => e.target_id === String(group.id));
      expect(mine(await auditEvents('group.created'))).toEqual([expect.objectContaining({ actor: ctx.staff.username, details: expect.objectContaining({ name, permissions: ['blog.add_post', 'blog.change_post'] }) })]);
      const updates = mine(await auditEvents('group.updated'));
      expect(updates).toHaveLength(2);
      expect(updates.map((e) => e.details)).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ name: renamed, previous_name: name, fields: ['name'] }),
          expect.objectContaining({ permissions: ['shop.view_order'], previous_permissions: ['blog.add_post', 'blog.change_post'] }),
        ]),
      );
      expect(mine(await auditEvents('group.deleted'))).toHaveLength(1);
    });

    it('bad input: 400 with one message list per field; nothing stored', async () => {
      const before = (await api('GET', '/api/groups/', { token: ctx.staffToken })).json['count'];
      const cases: Array<[Json, Record<string, string[]>]> = [
        [{}, { name: ['This field is required.'] }],
        [{ name: 42 }, { name: ['Must be a string.'] }],
        [{ name: '   ' }, { name: ['This field is required.'] }],
        [{ name: 'x'.repeat(151) }, { name: ['Must be at most 150 characters.'] }],
        [{ name: 'tab\there' }, { name: ['Must not contain control characters.'] }],
        [{ name: uniqueName(), permissions: 'blog.add_post' }, { permissions: ['Must be a list of strings.'] }],
        [{ name: uniqueName(), permissions: [1] }, { permissions: ['Must be a list of strings.'] }],
        [{ name: uniqueName(), permissions: ['no-dot', 'blog.add post'] }, { permissions: ['"no-dot" is not a permission; write app_label.codename, as Django does.', '"blog.add post" is not a permission; write app_label.codename, as Django does.'] }],
        [{ name: uniqueName(), members: [] }, { members: ['This field is read-only or unknown.'] }],
      ];
      for (const [body, fields] of cases) {
        const answer = await api('POST', '/api/groups/', { token: ctx.staffToken, json: body });
        expect(answer.status, `${JSON.stringify(body)} ${answer.text}`).toBe(400);
        expect(answer.json).toMatchObject({ error: 'invalid_request', error_description: expect.any(String) });
        expect(fieldsOf(answer)).toEqual(fields);
      }
      const notJson = await api('POST', '/api/groups/', { token: ctx.staffToken, raw: '{' });
      expect(notJson.status, notJson.text).toBe(400);
      expect((await api('GET', '/api/groups/', { token: ctx.staffToken })).json['count']).toBe(before);

      const group = await create({ name: uniqueName() });
      const bad = await api('PATCH', `/api/groups/${group.id}/`, { token: ctx.staffToken, json: { name: '', permissions: ['ok.fine', 'bad'] } });
      expect(bad.status, bad.text).toBe(400);
      expect(Object.keys(fieldsOf(bad)).sort()).toEqual(['name', 'permissions']);
      const member400 = await api('POST', `/api/groups/${group.id}/members/`, { token: ctx.staffToken, json: { user_id: 'abc' } });
      expect(member400.status, member400.text).toBe(400);
      expect(fieldsOf(member400)).toEqual({ user_id: ['Must be a user id (a whole number).'] });
      const missing = await api('POST', `/api/groups/${group.id}/members/`, { token: ctx.staffToken, json: {} });
      expect(fieldsOf(missing)).toEqual({ user_id: ['This field is required.'] });
    });

    it('unknown groups and users are 404; a taken name is 409', async () => {
      for (const id of ['999999999', 'abc', '1e3', '-1']) {
        for (const [method, path, json] of [
          ['GET', `/api/groups/${id}/`, undefined],
          ['PATCH', `/api/groups/${id}/`, { name: 'x' }],
          ['DELETE', `/api/groups/${id}/`, undefined],
          ['GET', `/api/groups/${id}/members/`, undefined],
          ['POST', `/api/groups/${id}/members/`, { user_id: member.id }],
          ['DELETE', `/api/groups/${id}/members/${member.id}/`, undefined],
        ] as const) {
          const answer = await api(method, path, { token: ctx.staffToken, ...(json ? { json } : {}) });
          expect(answer.status, `${method} ${path} ${answer.text}`).toBe(404);
          expect(answer.json['error']).toBe('not_found');
        }
      }
      const group = await create({ name: uniqueName() });
      const noUser = await api('POST', `/api/groups/${group.id}/members/`, { token: ctx.staffToken, json: { user_id: 999999999 } });
      expect(noUser.status, noUser.text).toBe(404);
      expect(noUser.json['error_description']).toBe('No such user.');
      const notMember = await api('DELETE', `/api/groups/${group.id}/members/${member.id}/`, { token: ctx.staffToken });
      expect(notMember.status, notMember.text).toBe(404);

      const other = await create({ name: uniqueName() });
      const dupCreate = await api('POST', '/api/groups/', { token: ctx.staffToken, json: { name: group.name } });
      expect(dupCreate.status, dupCreate.text).toBe(409);
      expect(dupCreate.json).toMatchObject({ error: 'conflict', error_description: 'A group with that name already exists.' });
      const dupRename = await api('PATCH', `/api/groups/${other.id}/`, { token: ctx.staffToken, json: { name: group.name } });
      expect(dupRename.status, dupRename.text).toBe(409);
      expect(asGroup(await api('GET', `/api/groups/${other.id}/`, { token: ctx.staffToken })).name).toBe(other.name);
      // Keeping its own name is no conflict.
      expect((await api('PATCH', `/api/groups/${group.id}/`, { token: ctx.staffToken, json: { name: group.name } })).status).toBe(200);
    });

    it('members: add (twice is once), list, remove, each change audited; deleting the group ends the memberships', async () => {
      const group = await create({ name: uniqueName() });
      const other = await fx.makeUser();
      for (const user of [member, other, member]) {
        const added = await api('POST', `/api/groups/${group.id}/members/`, { token: ctx.staffToken, json: { user_id: user.id } });
        expect(added.status, added.text).toBe(201);
        expect(added.json).toEqual({ id: user.id, username: user.username });
      }
      const listed = await api('GET', `/api/groups/${group.id}/members/`, { token: ctx.staffToken });
      expect(listed.status, listed.text).toBe(200);
      expect(listed.json['count']).toBe(2);
      expect(listed.json['results']).toEqual([member, other].map((u) => ({ id: u.id, username: u.username })).sort((a, b) => a.username.localeCompare(b.username)));
      const removed = await api('DELETE', `/api/groups/${group.id}/members/${other.id}/`, { token: ctx.staffToken });
      expect(removed.status, removed.text).toBe(204);
      expect((await api('GET', `/api/groups/${group.id}/members/`, { token: ctx.staffToken })).json['results']).toEqual([{ id: member.id, username: member.username }]);

      const mine = (events: Awaited<ReturnType<typeof auditEvents>>) => events.filter((e) => e.target_id === String(group.id));
      expect(mine(await auditEvents('group.member_added')).map((e) => e.details?.['user_id']).sort()).toEqual([member.id, other.id].sort());
      expect(mine(await auditEvents('group.member_removed')).map((e) => e.details?.['user_id'])).toEqual([other.id]);

      expect(await fx.server.latchkey.storage.groups.namesForUser(member.id)).toContain(group.name);
      expect((await api('DELETE', `/api/groups/${group.id}/`, { token: ctx.staffToken })).status).toBe(204);
      expect(await fx.server.latchkey.storage.groups.namesForUser(member.id)).not.toContain(group.name);
    });
  });

  describe("a user's groups on GET /api/users/<id>/", () => {
    it('staff see them; the person reading themselves gets the DRF body without them', async () => {
      const person = await fx.makeUser();
      const group = await create({ name: uniqueName() });
      const none = await api('GET', `/api/users/${person.id}/`, { token: ctx.staffToken });
      expect(none.status, none.text).toBe(200);
      expect(none.json['groups']).toEqual([]);
      await api('POST', `/api/groups/${group.id}/members/`, { token: ctx.staffToken, json: { user_id: person.id } });
      const staffView = await api('GET', `/api/users/${person.id}/`, { token: ctx.staffToken });
      expect(staffView.json).toMatchObject({ id: person.id, username: person.username, groups: [{ id: group.id, name: group.name }] });
      const own = await api('GET', `/api/users/${person.id}/`, { token: (await fx.apiLogin(person.username)).access });
      expect(own.status, own.text).toBe(200);
      expect(own.json).toMatchObject({ id: person.id, username: person.username });
      expect(own.json).not.toHaveProperty('groups');
    });
  });

  describe('the groups claim', () => {
    it('new tokens show an edit (ID token, userinfo, introspection); an access token issued before keeps its snapshot', async () => {
      const person = await fx.makeUser();
      const name = uniqueName();
      const group = await create({ name });
      await api('POST', `/api/groups/${group.id}/members/`, { token: ctx.staffToken, json: { user_id: person.id } });
      const { client, clientSecret } = await makeClient(fx.server.latchkey, { scope: 'openid profile groups' });
      const config = await discover(fx.server.issuer, client.clientId, clientSecret ?? null);
      const signIn = async () =>
        (await loginAndExchange(config, new UserAgent(), { username: person.username, password: PASSWORD }, { scope: 'openid groups', claims: JSON.stringify({ id_token: { groups: null } }), prompt: 'consent' })).tokens;
      const introspect = async (token: string) => {
        const answer = await api('POST', '/o/token/introspection', { authorization: basic(client.clientId, clientSecret ?? ''), form: { token } });
        expect(answer.status, answer.text).toBe(200);
        return answer.json;
      };
      const userinfo = async (token: string) => (await api('GET', `${fx.server.issuer}/me`, { token })).json;

      const first = await signIn();
      expect(first.claims()?.['groups']).toEqual([name]);
      expect(await userinfo(first.access_token)).toMatchObject({ groups: [name] });
      expect(await introspect(first.access_token)).toMatchObject({ active: true, groups: [name] });

      const renamed = `${name}-v2`;
      expect((await api('PATCH', `/api/groups/${group.id}/`, { token: ctx.staffToken, json: { name: renamed } })).status).toBe(200);
      const second = await signIn();
      expect(second.claims()?.['groups']).toEqual([renamed]);
      expect(await userinfo(second.access_token)).toMatchObject({ groups: [renamed] });
      expect(await introspect(second.access_token)).toMatchObject({ active: true, groups: [renamed] });
      // The earlier access token: its claims were fixed at issue; userinfo reads the person now.
      expect(await introspect(first.access_token)).toMatchObject({ active: true, groups: [name] });
      expect(await userinfo(first.access_token)).toMatchObject({ groups: [renamed] });

      expect((await api('DELETE', `/api/groups/${group.id}/members/${person.id}/`, { token: ctx.staffToken })).status).toBe(204);
      const third = await signIn();
      expect(third.claims()?.['groups']).toEqual([]);
      expect(await userinfo(third.access_token)).toMatchObject({ groups: [] });
    });
  });
});
