import { createHash } from 'node:crypto';
import { beforeAll, expect, it } from 'vitest';
import { adminLogin } from '../helpers/admin.js';
import { UserAgent } from '../helpers/browserless.js';
import { makeClient, makeUser, PASSWORD } from '../helpers/rp.js';
import { codeAt, enrollOverRest, wrongCode } from '../helpers/two-factor.js';
import { describeOnBackends } from '../helpers/fixture.js';

const FORM_EXPIRED = 'This form has expired';

/** The value of the element carrying `data-testid`, or undefined. */
function testId(html: string, id: string): string | undefined {
  return new RegExp(`data-testid="${id}"[^>]*>([^<]*)<`).exec(html)?.[1];
}

describeOnBackends('admin pages (%s)', (fx) => {
  let staff: UserAgent;
  let superAgent: UserAgent;
  let staffUser: Awaited<ReturnType<typeof makeUser>>;

  const url = (path: string) => `${fx.server.url}${path}`;

  const { get, post, submit, signIn } = fx;

  async function apiToken(username: string, password: string) {
    const response = await fetch(url('/api/token/'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    return response.status;
  }

  async function clientCredentials(clientId: string, secret: string) {
    const response = await fetch(url('/o/token'), {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials' }).toString(),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }

  /** A cookie value from an agent's jar (the CSRF cookie holds the token a form must carry). */
  async function cookie(agent: UserAgent, name: string) {
    return (await agent.jar.getCookies(fx.server.url)).find((c) => c.key === name)?.value ?? '';
  }

  beforeAll(async () => {
    staffUser = await makeUser(fx.server.latchkey, { isStaff: true });
    staff = await signIn(staffUser);
    superAgent = await signIn(await makeUser(fx.server.latchkey, { isStaff: true, isSuperuser: true }));
  });

  it('creates, edits, sets the password of and deletes a user', async () => {
    const form = await get(staff, '/admin/users/new');
    expect(form.status).toBe(200);
    expect(form.headers.get('cache-control')).toBe('no-store');
    expect(form.html).not.toContain('name="is_superuser"');

    const created = await submit(staff, '/admin/users/new', '/admin/users/new', {
      username: 'grace',
      email: 'Grace@Example.com',
      first_name: 'Grace',
      last_name: 'Hopper',
      password: 'an initial passphrase',
      is_active: 'on',
    });
    expect(created.status).toBe(303);
    const user = await fx.server.latchkey.storage.users.findByLogin('grace');
    expect(user).toMatchObject({ email: 'grace@example.com', firstName: 'Grace', isActive: true, isStaff: false, isSuperuser: false });
    expect(created.location).toBe(`/admin/users/${user!.id}?done=user-created`);
    const after = await get(staff, created.location!);
    expect(after.html).toContain('The user was created.');
    expect(after.html).toContain('value="Hopper"');

    // Listed and found by search.
    const list = await get(staff, '/admin/users?search=HOPP');
    expect(list.html).toContain(`href="/admin/users/${user!.id}"`);
    expect(list.html).toContain('grace@example.com');
    expect(list.html).toContain('1 user');

    // A duplicate username is a 409 on the re-rendered form, with the typed values kept but not the password.
    const duplicate = await submit(staff, '/admin/users/new', '/admin/users/new', {
      username: 'GRACE',
      first_name: 'Typed',
      password: 'another passphrase',
    });
    expect(duplicate.status).toBe(409);
    expect(duplicate.html).toContain('A user with that username already exists.');
    expect(duplicate.html).toContain('value="Typed"');
    expect(duplicate.html).not.toContain('another passphrase');
    const invalid = await submit(staff, '/admin/users/new', '/admin/users/new', { username: 'bad name', password: 'short' });
    expect(invalid.status).toBe(400);
    expect(invalid.html).toContain('Password must be at least 8 characters.');
    expect(invalid.html).toContain('Username may contain only');

    // Edit.
    const edited = await submit(staff, `/admin/users/${user!.id}`, `/admin/users/${user!.id}`, {
      username: 'grace',
      email: 'grace@navy.example',
      first_name: 'Grace B.',
      last_name: 'Hopper',
      is_active: 'on',
      is_staff: 'on',
    });
    expect(edited.status).toBe(303);
    expect(edited.location).toBe(`/admin/users/${user!.id}?done=user-saved`);
    // Staff changing someone else's address set it at once (unverified), without a password of theirs.
    expect(await fx.server.latchkey.storage.users.findById(user!.id)).toMatchObject({
      email: 'grace@navy.example',
      emailVerified: false,
      pendingEmail: null,
      firstName: 'Grace B.',
      isStaff: true,
    });
    const badEdit = await submit(staff, `/admin/users/${user!.id}`, `/admin/users/${user!.id}`, {
      username: 'grace',
      email: 'not-an-email',
      first_name: 'Still typed',
    });
    expect(badEdit.status).toBe(400);
    expect(badEdit.html).toContain('Enter a valid email address.');
    expect(badEdit.html).toContain('value="Still typed"');
    expect(await fx.server.latchkey.storage.users.findById(user!.id)).toMatchObject({ email: 'grace@navy.example', isActive: true });

    // Set a password for someone else: no current password asked for.
    const passwordPage = await get(staff, `/admin/users/${user!.id}/password`);
    expect(passwordPage.html).not.toContain('name="current_password"');
    const mismatch = await submit(staff, `/admin/users/${user!.id}/password`, '/password', { password: 'a new passphrase', password2: 'different' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.html).toContain('The two passwords differ.');
    const set = await submit(staff, `/admin/users/${user!.id}/password`, '/password', { password: 'a new passphrase', password2: 'a new passphrase' });
    expect(set.status).toBe(303);
    expect(set.location).toBe(`/admin/users/${user!.id}?done=password-set`);
    expect(await apiToken('grace', 'a new passphrase')).toBe(200);
    expect(await apiToken('grace', 'an initial passphrase')).toBe(401);

    // Delete: a confirmation page, then the POST.
    const confirm = await get(staff, `/admin/users/${user!.id}/delete`);
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('Delete user?');
    expect(await fx.server.latchkey.storage.users.findById(user!.id)).toMatchObject({ id: user!.id });
    const deleted = await submit(staff, `/admin/users/${user!.id}/delete`, '/delete', {});
    expect(deleted.status).toBe(303);
    expect(deleted.location).toBe('/admin/users?done=user-deleted');
    expect(await fx.server.latchkey.storage.users.findById(user!.id)).toBeUndefined();
    expect((await get(staff, deleted.location!)).html).toContain('The user was deleted');
    expect((await get(staff, `/admin/users/${user!.id}`)).status).toBe(404);
  });

  it('pages the user list 25 at a time, keeping the search, at paths with and without a trailing slash', async () => {
    const hash = await fx.server.latchkey.services.hasher.hash(PASSWORD);
    for (let i = 0; i < 30; i++) {
      await fx.server.latchkey.storage.users.create({ username: `pager_${String(i).padStart(2, '0')}`, email: null, passwordHash: hash });
    }
    const first = await get(staff, '/admin/users/?search=pager_');
    expect(first.status).toBe(200);
    expect(first.html.match(/href="\/admin\/users\/\d+"/g)).toHaveLength(25);
    expect(first.html).toContain('href="/admin/users?search=pager_&amp;page=2"');
    expect(first.html).not.toContain('rel="prev"');
    const second = await get(staff, '/admin/users?search=pager_&page=2');
    expect(second.html.match(/href="\/admin\/users\/\d+"/g)).toHaveLength(5);
    expect(second.html).toContain('pager_29');
    expect(second.html).toContain('href="/admin/users?search=pager_&amp;page=1"');
    expect(second.html).not.toContain('rel="next"');
    // Nonsense and out-of-range pages fall back to a real page.
    expect((await get(staff, '/admin/users?search=pager_&page=zzz')).html).toContain('pager_00');
    expect((await get(staff, '/admin/users?search=pager_&page=99')).html).toContain('pager_29');
    for (const path of ['/admin/users/new/', '/admin/applications/', '/admin/applications/new/', '/admin/keys/', '/admin']) {
      expect((await get(staff, path)).status, path).toBe(200);
    }
    for (const path of ['/admin/users/999999', '/admin/users/abc/password', '/admin/applications/no-such-app', '/admin/applications/x/delete']) {
      const missing = await get(staff, path);
      expect(missing.status, path).toBe(404);
      expect(missing.html).toContain('Not found');
    }
  });

  it('asks for your current password when you change your own', async () => {
    const me = await makeUser(fx.server.latchkey, { isStaff: true });
    const agent = await signIn(me);
    const page = await get(agent, `/admin/users/${me.id}/password`);
    expect(page.html).toContain('name="current_password"');
    // Your own permissions are not on your form.
    expect((await get(agent, `/admin/users/${me.id}`)).html).toContain('You cannot change your own permissions here.');

    const missing = await submit(agent, `/admin/users/${me.id}/password`, '/password', { password: 'my new passphrase', password2: 'my new passphrase' });
    expect(missing.status).toBe(400);
    expect(missing.html).toContain('<p class="field-error" id="current_password-error">This field is required.</p>');
    const wrong = await submit(agent, `/admin/users/${me.id}/password`, '/password', {
      current_password: 'not it at all',
      password: 'my new passphrase',
      password2: 'my new passphrase',
    });
    expect(wrong.status).toBe(400);
    expect(wrong.html).toContain('The current password is not correct.');
    const done = await submit(agent, `/admin/users/${me.id}/password`, '/password', {
      current_password: PASSWORD,
      password: 'my new passphrase',
      password2: 'my new passphrase',
    });
    expect(done.status).toBe(303);
    expect(await apiToken(me.username, 'my new passphrase')).toBe(200);
  });

  it('asks for your current password when you change your own email address; the new one waits for verification', async () => {
    const me = await makeUser(fx.server.latchkey, { isStaff: true });
    const agent = await signIn(me);
    const edit = `/admin/users/${me.id}`;
    const page = await get(agent, edit);
    expect(page.html).toContain('name="current_password"');
    expect(page.html).toContain('Needed only to change your own email address.');
    // No two-factor: no code asked for.
    expect(page.html).not.toContain('name="otp"');
    const newEmail = `moved_${me.username}@example.com`;
    const fields = { username: me.username, email: newEmail, first_name: 'Moved', last_name: me.lastName };
    const before = await fx.server.latchkey.storage.users.findById(me.id);

    const missing = await submit(agent, edit, edit, fields);
    expect(missing.status).toBe(400);
    expect(missing.html).toContain('Please correct the fields marked below.');
    expect(missing.html).toContain('<p class="field-error" id="current_password-error">This field is required.</p>');
    expect(missing.html).toContain(`value="${newEmail}"`);
    const wrong = await submit(agent, edit, edit, { ...fields, current_password: 'not it at all' });
    expect(wrong.status).toBe(400);
    expect(wrong.html).toContain('<p class="field-error" id="current_password-error">The current password is not correct.</p>');
    expect(wrong.html).not.toContain('not it at all');
    expect(await fx.server.latchkey.storage.users.findById(me.id)).toEqual(before);

    const done = await submit(agent, edit, edit, { ...fields, current_password: PASSWORD });
    expect(done.status, done.html).toBe(303);
    expect(done.location).toBe(`${edit}?done=user-saved`);
    // Your own address waits for its link, as in the account center; the old one stays in use, verified.
    expect(await fx.server.latchkey.storage.users.findById(me.id)).toMatchObject({ firstName: 'Moved', email: me.email, emailVerified: true, pendingEmail: newEmail, isStaff: true });
    expect(await apiToken(newEmail, PASSWORD)).toBe(401);
    expect(await apiToken(me.email!, PASSWORD)).toBe(200);
    const confirmed = await fx.server.latchkey.services.audit.list({ offset: 0, limit: 50, event: 'identity.confirmed' });
    expect(confirmed.events.some((e) => e.actor_user_id === me.id)).toBe(true);

    // Other fields alone need nothing.
    const renamed = await submit(agent, edit, edit, { ...fields, email: me.email!, first_name: 'Renamed' });
    expect(renamed.status).toBe(303);
    expect(await fx.server.latchkey.storage.users.findById(me.id)).toMatchObject({ firstName: 'Renamed', email: me.email, pendingEmail: newEmail });
  });

  it('with your two-factor on, your own address and password also need a code', async () => {
    const me = await makeUser(fx.server.latchkey, { isStaff: true });
    // Signed in before two-factor is on (the sign-in would then ask for a code).
    const agent = await signIn(me);
    const { secret } = await enrollOverRest(fx.server.url, me.username);
    const edit = `/admin/users/${me.id}`;
    expect((await get(agent, edit)).html).toContain('name="otp"');
    expect((await get(agent, `${edit}/password`)).html).toContain('name="otp"');
    const newEmail = `second_${me.username}@example.com`;
    const fields = { username: me.username, email: newEmail, first_name: me.firstName, last_name: me.lastName, current_password: PASSWORD };

    const noCode = await submit(agent, edit, edit, fields);
    expect(noCode.status).toBe(400);
    expect(noCode.html).toContain('id="otp-error">This account uses two-factor authentication');
    const badCode = await submit(agent, edit, edit, { ...fields, otp: wrongCode(secret) });
    expect(badCode.status).toBe(400);
    expect(badCode.html).toContain('id="otp-error">The code is not valid.');
    const noCodePassword = await submit(agent, `${edit}/password`, '/password', { current_password: PASSWORD, password: 'my new passphrase', password2: 'my new passphrase' });
    expect(noCodePassword.status).toBe(400);
    expect(noCodePassword.html).toContain('id="otp-error">This account uses two-factor authentication');
    expect(await fx.server.latchkey.storage.users.findById(me.id)).toMatchObject({ email: me.email, pendingEmail: null, passwordHash: me.passwordHash });

    // Enrolling used up the current time step: the next one.
    const done = await submit(agent, edit, edit, { ...fields, otp: codeAt(secret, 1) });
    expect(done.status, done.html).toBe(303);
    expect(await fx.server.latchkey.storage.users.findById(me.id)).toMatchObject({ email: me.email, pendingEmail: newEmail });
  });

  it('keeps staff from deleting themselves or changing their own permissions', async () => {
    const me = await makeUser(fx.server.latchkey, { isStaff: true });
    const agent = await signIn(me);
    const confirm = await get(agent, `/admin/users/${me.id}/delete`);
    expect(confirm.html).toContain('You cannot delete your own account here.');
    const refused = await post(agent, `/admin/users/${me.id}/delete`, { csrf: await cookie(agent, 'lk.csrf') });
    expect(refused.status).toBe(400);
    expect(await fx.server.latchkey.storage.users.findById(me.id)).toMatchObject({ id: me.id });
    // Flags left out of the POST do not take your permissions away (the address unchanged: no password needed).
    const forged = await post(agent, `/admin/users/${me.id}`, { csrf: await cookie(agent, 'lk.csrf'), username: me.username, email: me.email!, first_name: 'Me' });
    expect(forged.status).toBe(303);
    expect(await fx.server.latchkey.storage.users.findById(me.id)).toMatchObject({ firstName: 'Me', isStaff: true, isActive: true });
  });

  it('applies the superuser rules: only superusers see, set or manage superusers', async () => {
    const boss = await makeUser(fx.server.latchkey, { isStaff: true, isSuperuser: true, firstName: 'Boss' });
    // Staff cannot change a superuser: the pages say so and a POST is refused with 403.
    expect((await get(staff, `/admin/users/${boss.id}`)).html).toContain('only a superuser may change them');
    const csrf = await cookie(staff, 'lk.csrf');
    const edit = await post(staff, `/admin/users/${boss.id}`, { csrf, username: boss.username, first_name: 'Taken over', is_active: 'on', is_staff: 'on' });
    expect(edit.status).toBe(403);
    expect(edit.html).toContain('Only a superuser may change or delete a superuser.');
    expect((await post(staff, `/admin/users/${boss.id}/password`, { csrf, password: 'hijacked passphrase', password2: 'hijacked passphrase' })).status).toBe(403);
    expect((await post(staff, `/admin/users/${boss.id}/delete`, { csrf })).status).toBe(403);
    expect(await fx.server.latchkey.storage.users.findById(boss.id)).toMatchObject({ firstName: 'Boss', passwordHash: boss.passwordHash });
    // A forged is_superuser from plain staff is refused; nothing is created.
    const forged = await post(staff, '/admin/users/new', { csrf, username: 'sneaky', password: PASSWORD, is_active: 'on', is_superuser: 'on' });
    expect(forged.status).toBe(403);
    expect(await fx.server.latchkey.storage.users.findByLogin('sneaky')).toBeUndefined();

    // A superuser sees the checkbox and may use it.
    const form = await get(superAgent, '/admin/users/new');
    expect(form.html).toContain('name="is_superuser"');
    const made = await submit(superAgent, '/admin/users/new', '/admin/users/new', { username: 'deputy', password: PASSWORD, is_active: 'on', is_staff: 'on', is_superuser: 'on' });
    expect(made.status).toBe(303);
    expect(await fx.server.latchkey.storage.users.findByLogin('deputy')).toMatchObject({ isStaff: true, isSuperuser: true });
  });

  /** Every admin URL, with ids of a real user and a real application. */
  async function everyPage() {
    const target = await makeUser(fx.server.latchkey);
    const { client, clientSecret } = await makeClient(fx.server.latchkey, { name: 'Guarded', grantTypes: ['client_credentials'], redirectUris: [] });
    const app = encodeURIComponent(client.clientId);
    const gets = [
      '/admin',
      '/admin/',
      '/admin/users',
      '/admin/users/',
      '/admin/users?search=a&page=2',
      '/admin/users/new',
      `/admin/users/${target.id}`,
      `/admin/users/${target.id}/`,
      `/admin/users/${target.id}/password`,
      `/admin/users/${target.id}/delete`,
      '/admin/applications',
      '/admin/applications/new',
      `/admin/applications/${app}`,
      `/admin/applications/${app}/delete`,
      '/admin/keys',
      '/admin/keys/',
      '/admin/audit',
      '/admin/audit?event=login.*&user=a&from=2026-01-01',
    ];
    const posts: Array<[string, Record<string, string>]> = [
      ['/admin/users/new', { username: 'intruder', password: PASSWORD, is_active: 'on', is_staff: 'on' }],
      [`/admin/users/${target.id}`, { username: target.username, first_name: 'Changed', is_active: 'on', is_staff: 'on' }],
      [`/admin/users/${target.id}/password`, { password: 'changed passphrase', password2: 'changed passphrase' }],
      [`/admin/users/${target.id}/delete`, {}],
      ['/admin/applications/new', { name: 'Intruder app', client_type: 'confidential', grant_types: 'client_credentials', scope: 'openid' }],
      [`/admin/applications/${app}`, { name: 'Changed', client_type: 'confidential', grant_types: 'client_credentials', scope: 'openid' }],
      [`/admin/applications/${app}/rotate-secret`, { confirm: 'yes' }],
      [`/admin/applications/${app}/delete`, {}],
      ['/admin/keys/rotate', {}],
      [`/admin/users/${target.id}/sessions/some-session/end`, {}],
      [`/admin/users/${target.id}/applications/some-grant/revoke`, {}],
    ];
    const snapshot = async () => ({
      users: await fx.server.latchkey.storage.users.count(),
      target: await fx.server.latchkey.storage.users.findById(target.id),
      client: await fx.server.latchkey.storage.clients.find(client.clientId),
      clients: (await fx.server.latchkey.storage.clients.list()).length,
      keys: (await fx.server.latchkey.services.keyStore.list()).map((k) => `${k.kid}:${k.status}`),
      token: (await clientCredentials(client.clientId, clientSecret!)).status,
    });
    return { gets, posts, snapshot };
  }

  it('answers 403 to signed-in non-staff on every page and every form, changing nothing', async () => {
    const plain = new UserAgent();
    const plainUser = await makeUser(fx.server.latchkey);
    expect((await adminLogin(fx.server.url, plain, plainUser.username, PASSWORD)).response.status).toBe(403);
    const { gets, posts, snapshot } = await everyPage();
    for (const path of gets) {
      const page = await get(plain, path);
      expect(page.status, path).toBe(403);
      expect(page.html).toContain('not a staff member');
    }
    const before = await snapshot();
    expect(before.token).toBe(200);
    // Even with this browser's own valid CSRF token.
    const csrf = await cookie(plain, 'lk.csrf');
    expect(csrf).not.toBe('');
    for (const [path, fields] of posts) expect((await post(plain, path, { csrf, ...fields })).status, path).toBe(403);
    expect(await snapshot()).toEqual(before);
  });

  it('sends anonymous GETs to the login page and answers anonymous POSTs 401, changing nothing', async () => {
    const anonymous = new UserAgent();
    const { gets, posts, snapshot } = await everyPage();
    for (const path of gets) {
      const response = await anonymous.fetch(url(path));
      expect(response.status, path).toBe(302);
      expect(response.headers.get('location'), path).toContain('/o/auth?');
    }
    const before = await snapshot();
    for (const [path, fields] of posts) expect((await post(anonymous, path, fields)).status, path).toBe(401);
    expect(await snapshot()).toEqual(before);
  });

  it('refuses forms without this browser’s CSRF token with 403, changing nothing', async () => {
    const { posts, snapshot } = await everyPage();
    const other = await signIn(await makeUser(fx.server.latchkey, { isStaff: true }));
    await get(other, '/admin/users/new');
    const foreign = await cookie(other, 'lk.csrf');
    expect(foreign).not.toBe(await cookie(staff, 'lk.csrf'));
    const before = await snapshot();
    for (const [path, fields] of posts) {
      for (const csrf of [undefined, '', foreign]) {
        const answer = await post(staff, path, csrf === undefined ? fields : { ...fields, csrf });
        expect(answer.status, `${path} csrf=${csrf}`).toBe(403);
        expect(answer.html, path).toContain(FORM_EXPIRED);
      }
    }
    expect(await snapshot()).toEqual(before);
  });

  it('registers an application and shows its secret exactly once', async () => {
    const form = await get(staff, '/admin/applications/new');
    // Defaults: authorization_code + refresh_token, confidential, the usual scopes.
    expect(form.html).toMatch(/value="authorization_code" checked/);
    expect(form.html).toMatch(/value="refresh_token" checked/);
    expect(form.html).not.toMatch(/value="client_credentials" checked/);
    expect(form.html).toMatch(/value="confidential" checked/);
    expect(form.html).toContain('value="openid profile email offline_access"');

    const shown = await submit(staff, '/admin/applications/new', '/admin/applications/new', {
      name: 'Machine <b>one</b>',
      redirect_uris: '',
      post_logout_redirect_uris: '',
      grant_types: ['client_credentials'],
      client_type: 'confidential',
      scope: 'openid',
    });
    expect(shown.status).toBe(200);
    expect(shown.headers.get('cache-control')).toBe('no-store');
    expect(shown.html).toContain('will not be shown again');
    expect(shown.html).toContain('Machine &lt;b&gt;one&lt;/b&gt;');
    const clientId = testId(shown.html, 'client-id')!;
    const secret = testId(shown.html, 'client-secret')!;
    expect(clientId).toMatch(/^[\w-]{20,}$/);
    expect(secret).toMatch(/^[\w-]{40,}$/);
    expect(shown.html).toMatch(/class="secret" data-testid="client-secret"/);

    // Only the hash is stored; no page shows the secret again.
    const row = (await fx.server.latchkey.storage.knex('clients').where({ client_id: clientId }).first()) as Record<string, unknown>;
    expect(row['client_secret_hash']).toBe(createHash('sha256').update(secret).digest('hex'));
    expect(JSON.stringify(row)).not.toContain(secret);
    for (const path of ['/admin/applications', `/admin/applications/${clientId}`, `/admin/applications/${clientId}/delete`]) {
      const page = await get(staff, path);
      expect(page.status, path).toBe(200);
      expect(page.html, path).not.toContain(secret);
      expect(page.html, path).not.toContain('data-testid="client-secret"');
    }
    expect((await get(staff, '/admin/applications')).html).toContain(clientId);
    expect((await clientCredentials(clientId, secret)).status).toBe(200);

    // Edit keeps the secret.
    const edited = await submit(staff, `/admin/applications/${clientId}`, `/admin/applications/${clientId}`, {
      name: 'Machine two',
      grant_types: ['client_credentials'],
      client_type: 'confidential',
      scope: 'openid profile',
    });
    expect(edited.status).toBe(303);
    expect(edited.location).toBe(`/admin/applications/${clientId}?done=app-saved`);
    expect((await get(staff, edited.location!)).html).toContain('The application was saved.');
    expect(await fx.server.latchkey.storage.clients.find(clientId)).toMatchObject({ name: 'Machine two', metadata: { scope: 'openid profile' } });
    expect((await clientCredentials(clientId, secret)).status).toBe(200);

    // Rotation needs the box ticked, then shows the new secret once; the old one stops working.
    const unconfirmed = await submit(staff, `/admin/applications/${clientId}`, '/rotate-secret', {});
    expect(unconfirmed.status).toBe(400);
    expect((await clientCredentials(clientId, secret)).status).toBe(200);
    const rotated = await submit(staff, `/admin/applications/${clientId}`, '/rotate-secret', { confirm: 'yes' });
    expect(rotated.status).toBe(200);
    expect(rotated.headers.get('cache-control')).toBe('no-store');
    const newSecret = testId(rotated.html, 'client-secret')!;
    expect(newSecret).toMatch(/^[\w-]{40,}$/);
    expect(newSecret).not.toBe(secret);
    const old = await clientCredentials(clientId, secret);
    expect(old.status).toBe(401);
    expect(old.json['error']).toBe('invalid_client');
    const fresh = await clientCredentials(clientId, newSecret);
    expect(fresh.status).toBe(200);
    expect((await get(staff, `/admin/applications/${clientId}`)).html).not.toContain(newSecret);

    // Delete: confirmation, then everything it was issued goes with it.
    expect((await fx.server.latchkey.storage.knex('oidc_payloads').where({ client_id: clientId })).length).toBeGreaterThan(0);
    const confirm = await get(staff, `/admin/applications/${clientId}/delete`);
    expect(confirm.html).toContain('Delete application?');
    const deleted = await submit(staff, `/admin/applications/${clientId}/delete`, '/delete', {});
    expect(deleted.status).toBe(303);
    expect(deleted.location).toBe('/admin/applications?done=app-deleted');
    expect(await fx.server.latchkey.storage.clients.find(clientId)).toBeUndefined();
    expect(await fx.server.latchkey.storage.knex('oidc_payloads').where({ client_id: clientId })).toEqual([]);
    expect((await clientCredentials(clientId, newSecret)).status).toBe(401);
    expect((await get(staff, `/admin/applications/${clientId}`)).status).toBe(404);
  });

  it('re-renders the application form with the service’s message when the metadata is refused', async () => {
    const badUri = await submit(staff, '/admin/applications/new', '/admin/applications/new', {
      name: 'Bad',
      redirect_uris: 'not a url',
      grant_types: ['authorization_code'],
      client_type: 'confidential',
      scope: 'openid',
    });
    expect(badUri.status).toBe(400);
    expect(badUri.html).toMatch(/redirect_uris/);
    expect(badUri.html).toContain('not a url');
    const publicMachine = await submit(staff, '/admin/applications/new', '/admin/applications/new', {
      name: 'Bad',
      grant_types: ['client_credentials'],
      client_type: 'public',
      scope: 'openid',
    });
    expect(publicMachine.status).toBe(400);
    expect(publicMachine.html).toContain('A public client cannot use client_credentials');
    const none = await submit(staff, '/admin/applications/new', '/admin/applications/new', { name: '', client_type: 'public', scope: '' });
    expect(none.status).toBe(400);
    expect(none.html).toContain('Choose at least one grant type.');
    expect(none.html).toContain('A name is required.');
    expect((await fx.server.latchkey.storage.clients.list()).filter((c) => c.name === 'Bad')).toEqual([]);

    // A switch to public drops the secret; back to confidential shows a new one once.
    const { client, clientSecret } = await makeClient(fx.server.latchkey, { name: 'Switcher' });
    const id = client.clientId;
    const fields = { name: 'Switcher', redirect_uris: 'http://127.0.0.1:8787/callback', grant_types: ['authorization_code'], scope: 'openid' };
    const toPublic = await submit(staff, `/admin/applications/${id}`, `/admin/applications/${id}`, { ...fields, client_type: 'public' });
    expect(toPublic.status).toBe(303);
    expect(toPublic.location).toContain('done=app-public');
    expect((await fx.server.latchkey.storage.clients.find(id))?.isPublic).toBe(true);
    const toConfidential = await submit(staff, `/admin/applications/${id}`, `/admin/applications/${id}`, { ...fields, client_type: 'confidential' });
    expect(toConfidential.status).toBe(200);
    const again = testId(toConfidential.html, 'client-secret');
    expect(again).toMatch(/^[\w-]{40,}$/);
    expect(again).not.toBe(clientSecret);
  });

  it('shows built-in applications without letting anyone edit or delete them', async () => {
    const list = await get(staff, '/admin/applications');
    expect(list.html).toContain('Latchkey administration');
    expect(list.html).not.toContain('href="/admin/applications/latchkey-admin"');
    const view = await get(staff, '/admin/applications/latchkey-admin');
    expect(view.status).toBe(200);
    expect(view.html).toContain('built-in application');
    expect(view.html).not.toContain('action="/admin/applications/latchkey-admin"');
    const csrf = await cookie(staff, 'lk.csrf');
    const before = await fx.server.latchkey.storage.clients.find('latchkey-admin');
    const edit = await post(staff, '/admin/applications/latchkey-admin', { csrf, name: 'Mine', grant_types: 'authorization_code', client_type: 'public', scope: 'openid' });
    expect(edit.status).toBe(403);
    expect((await post(staff, '/admin/applications/latchkey-admin/delete', { csrf })).status).toBe(403);
    expect((await post(staff, '/admin/applications/latchkey-first-party/rotate-secret', { csrf, confirm: 'yes' })).status).not.toBe(200);
    expect(await fx.server.latchkey.storage.clients.find('latchkey-admin')).toEqual(before);
  });

  it('rotates the signing keys: the new keys are published at /o/jwks at once', async () => {
    const jwks = async () => ((await (await fetch(url('/o/jwks'))).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
    const before = (await fx.server.latchkey.services.keyStore.list()).filter((k) => k.status === 'current').map((k) => k.kid);
    const page = await get(staff, '/admin/keys');
    for (const kid of before) expect(page.html).toContain(kid);
    const rotated = await submit(staff, '/admin/keys', '/admin/keys/rotate', {});
    expect(rotated.status).toBe(303);
    expect(rotated.location).toBe('/admin/keys?done=keys-rotated');
    const current = (await fx.server.latchkey.services.keyStore.list()).filter((k) => k.status === 'current').map((k) => k.kid);
    expect(current).toHaveLength(before.length);
    for (const kid of current) expect(before).not.toContain(kid);
    const published = await jwks();
    for (const kid of [...current, ...before]) expect(published).toContain(kid);
    const after = await get(staff, rotated.location!);
    expect(after.html).toContain('New signing keys are in use.');
    expect(after.html).toContain('status-retired');
    // The admin session survives the cookie key rotation.
    expect((await get(staff, '/admin/users')).status).toBe(200);
  });

  it('escapes what people typed, and shows only fixed notices', async () => {
    const evil = await makeUser(fx.server.latchkey, { firstName: '<script>alert(1)</script>', lastName: '"><img src=x onerror=alert(2)>' });
    for (const path of [`/admin/users?search=${evil.username}`, `/admin/users/${evil.id}`, `/admin/users/${evil.id}/delete`]) {
      const page = await get(staff, path);
      expect(page.status, path).toBe(200);
      expect(page.html, path).not.toContain('<script>alert(1)');
      expect(page.html, path).not.toContain('<img src=x');
    }
    expect((await get(staff, `/admin/users?search=${evil.username}`)).html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect((await get(staff, `/admin/users/${evil.id}`)).html).toContain('value="&lt;script&gt;alert(1)&lt;/script&gt;"');
    const search = await get(staff, `/admin/users?search=${encodeURIComponent('"><script>x</script>')}`);
    expect(search.html).not.toContain('<script>x');
    const notice = await get(staff, `/admin/users?done=${encodeURIComponent('<b>hi</b>')}`);
    expect(notice.html).not.toContain('hi</b>');
    expect(notice.html).not.toContain('class="notice"');
    expect((await get(staff, '/admin/users?done=toString')).html).not.toContain('class="notice"');
  });
});
