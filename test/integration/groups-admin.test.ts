import { beforeAll, expect, it } from 'vitest';
import type { User } from '../../src/storage/users.js';
import { UserAgent } from '../helpers/browserless.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { makeUser, PASSWORD } from '../helpers/rp.js';
import { adminLogin } from '../helpers/admin.js';

const FORM_EXPIRED = 'This form has expired';

/**
 * The "Groups" admin pages over HTTP: list, add, edit name and permissions, members, delete;
 * field messages, 409 for a taken name, CSRF on every form, staff only, everything escaped.
 */
describeOnBackends('groups admin pages (%s)', (fx) => {
  let staff: UserAgent;
  let member: User;
  let seq = 0;
  const uniqueName = () => `admins-${++seq}-${Math.random().toString(36).slice(2, 7)}`;
  const { get, post, submit, signIn } = fx;
  const groups = () => fx.server.latchkey.services.groupService;

  beforeAll(async () => {
    staff = await signIn(await makeUser(fx.server.latchkey, { isStaff: true }));
    member = await makeUser(fx.server.latchkey);
  });

  it('adds, edits, manages members and deletes a group through the forms, each change audited', async () => {
    expect((await get(staff, '/admin/')).html).toContain('<a href="/admin/groups/">Groups</a>');
    const name = uniqueName();
    const added = await submit(staff, '/admin/groups/new', '/admin/groups/new', { name, permissions: 'blog.change_post\nblog.add_post' });
    expect(added.status, added.html).toBe(303);
    const stored = (await groups().all()).find((g) => g.name === name);
    expect(stored).toMatchObject({ permissions: ['blog.add_post', 'blog.change_post'] });
    expect(added.location).toBe(`/admin/groups/${stored!.id}?done=group-created`);
    const after = await get(staff, added.location!);
    expect(after.html).toContain('The group was added.');
    expect((await get(staff, '/admin/groups')).html).toContain(`href="/admin/groups/${stored!.id}"`);

    const edited = await submit(staff, `/admin/groups/${stored!.id}`, `/admin/groups/${stored!.id}`, { name: `${name}-2`, permissions: 'shop.view_order' });
    expect(edited.status, edited.html).toBe(303);
    expect(await groups().get(stored!.id)).toMatchObject({ name: `${name}-2`, permissions: ['shop.view_order'] });

    const addMember = await submit(staff, `/admin/groups/${stored!.id}`, `/admin/groups/${stored!.id}/members`, { username: member.username });
    expect(addMember.status, addMember.html).toBe(303);
    expect(await groups().members(stored!.id)).toEqual([{ id: member.id, username: member.username }]);
    const unknown = await submit(staff, `/admin/groups/${stored!.id}`, `/admin/groups/${stored!.id}/members`, { username: 'nobody-here' });
    expect(unknown.status).toBe(404);
    expect(unknown.html).toContain('No such user.');
    const removeMember = await submit(staff, `/admin/groups/${stored!.id}`, `/admin/groups/${stored!.id}/members`, { remove: String(member.id) });
    expect(removeMember.status, removeMember.html).toBe(303);
    expect(await groups().members(stored!.id)).toEqual([]);

    const confirm = await get(staff, `/admin/groups/${stored!.id}/delete`);
    expect(confirm.html).toContain('Delete group?');
    const deleted = await submit(staff, `/admin/groups/${stored!.id}/delete`, '/delete', {});
    expect(deleted.status).toBe(303);
    expect(deleted.location).toBe('/admin/groups?done=group-deleted');
    expect((await get(staff, `/admin/groups/${stored!.id}`)).status).toBe(404);

    const events = (await fx.server.latchkey.services.audit.list({ offset: 0, limit: 200 })).events.filter((e) => e.target_type === 'group' && e.target_id === String(stored!.id)).map((e) => e.event);
    expect(events.sort()).toEqual(['group.created', 'group.deleted', 'group.member_added', 'group.member_removed', 'group.updated']);
  });

  it('re-renders the form with field messages and the typed values; 409 for a taken name', async () => {
    const before = await groups().all();
    const invalid = await submit(staff, '/admin/groups/new', '/admin/groups/new', { name: '', permissions: 'not a permission' });
    expect(invalid.status).toBe(400);
    expect(invalid.html).toContain('is not a permission');
    expect(invalid.html).toContain('aria-invalid="true" aria-describedby="name-error"');
    expect(invalid.html).toContain('not a permission</textarea>');
    const existing = await groups().create({ name: uniqueName() });
    const taken = await submit(staff, '/admin/groups/new', '/admin/groups/new', { name: existing.name, permissions: '' });
    expect(taken.status).toBe(409);
    expect(taken.html).toContain('A group with that name already exists.');
    expect((await groups().all()).length).toBe(before.length + 1);
  });

  it('refuses forms without the CSRF token, and people who are not staff', async () => {
    const group = await groups().create({ name: uniqueName() });
    for (const path of [`/admin/groups/${group.id}`, `/admin/groups/${group.id}/members`, `/admin/groups/${group.id}/delete`, '/admin/groups/new']) {
      const answer = await post(staff, path, { csrf: 'wrong', name: 'hijacked', username: member.username });
      expect(answer.status, path).toBe(403);
      expect(answer.html).toContain(FORM_EXPIRED);
    }
    expect(await groups().get(group.id)).toMatchObject({ name: group.name });
    expect(await groups().members(group.id)).toEqual([]);
    const plain = new UserAgent();
    const plainUser = await makeUser(fx.server.latchkey);
    const landed = await adminLogin(fx.server.url, plain, plainUser.username, PASSWORD, '/admin/groups');
    expect(landed.response.status).toBe(403);
    expect((await get(plain, '/admin/groups')).status).toBe(403);
    expect((await get(plain, `/admin/groups/${group.id}`)).status).toBe(403);
    expect((await get(new UserAgent(), '/admin/groups')).status).not.toBe(200);
  });

  it("sets a user's groups with the tick boxes of the user's page; refuses without CSRF and for unknown groups", async () => {
    const person = await makeUser(fx.server.latchkey);
    const [a, b] = [await groups().create({ name: uniqueName() }), await groups().create({ name: uniqueName() })];
    await groups().addMember(a.id, person.id);
    const edit = await get(staff, `/admin/users/${person.id}`);
    expect(edit.html).toContain(`name="group" value="${a.id}" checked`);
    expect(edit.html).toContain(`name="group" value="${b.id}">`);
    const saved = await submit(staff, `/admin/users/${person.id}`, `/admin/users/${person.id}/groups`, { group: [String(b.id)] });
    expect(saved.status, saved.html).toBe(303);
    expect(saved.location).toBe(`/admin/users/${person.id}?done=user-groups-saved`);
    expect((await groups().groupsOf(person.id)).map((g) => g.id)).toEqual([b.id]);
    expect((await get(staff, `/admin/users/${person.id}`)).html).toContain(`name="group" value="${b.id}" checked`);
    const forged = await post(staff, `/admin/users/${person.id}/groups`, { csrf: 'wrong', group: String(a.id) });
    expect(forged.status).toBe(403);
    const unknown = await submit(staff, `/admin/users/${person.id}`, `/admin/users/${person.id}/groups`, { group: ['999999999'] });
    expect(unknown.status).toBe(404);
    expect(unknown.html).toContain('No such group.');
    expect((await groups().groupsOf(person.id)).map((g) => g.id)).toEqual([b.id]);
  });

  it('escapes what it renders', async () => {
    const group = await groups().create({ name: `<script>alert(${++seq})</script>` });
    await groups().addMember(group.id, member.id);
    for (const path of ['/admin/groups', `/admin/groups/${group.id}`, `/admin/groups/${group.id}/delete`]) {
      const page = await get(staff, path);
      expect(page.status, path).toBe(200);
      expect(page.html, path).not.toContain('<script>alert(');
      expect(page.html, path).toContain('&lt;script&gt;');
    }
  });
});
