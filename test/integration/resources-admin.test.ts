import { beforeAll, expect, it } from 'vitest';
import { API_SCOPES } from '../../src/core/resources/built-in.js';
import { adminLogin } from '../helpers/admin.js';
import { UserAgent } from '../helpers/browserless.js';
import { makeUser, PASSWORD } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';

const FORM_EXPIRED = 'This form has expired';

/**
 * The "API resources" admin pages over HTTP: list (built-in first), add, edit, delete with a
 * confirmation page, the built-in resource read-only, CSRF on every form, staff only, and
 * everything escaped.
 */
describeOnBackends('API resources admin pages (%s)', (fx) => {
  let staff: UserAgent;
  let seq = 0;

  const url = (path: string) => `${fx.server.url}${path}`;
  const uniqueIdentifier = () => `https://admin-${++seq}.example.com/api`;

  const { get, post, submit, signIn } = fx;

  const cookie = async (agent: UserAgent, name: string) => (await agent.jar.getCookies(fx.server.url)).find((c) => c.key === name)?.value ?? '';
  const rows = async () => (await fx.server.latchkey.storage.knex('resources').orderBy('id')) as Array<Record<string, unknown>>;

  beforeAll(async () => {
    staff = await signIn(await makeUser(fx.server.latchkey, { isStaff: true }));
  });

  it('links the pages from the navigation and lists the built-in REST API first', async () => {
    const dashboard = await get(staff, '/admin/');
    expect(dashboard.html).toContain('<a href="/admin/resources/">API resources</a>');
    const list = await get(staff, '/admin/resources/');
    expect(list.status).toBe(200);
    expect(list.headers.get('cache-control')).toBe('no-store');
    expect(list.headers.get('x-frame-options')).toBe('DENY');
    expect(list.html).toContain(`${fx.server.url}/api`);
    expect(list.html).toMatch(/Latchkey REST API<\/a> <span class="badge">built-in<\/span>/);
    // Its scopes are the four API scopes, in order; the old single `api` scope is gone.
    expect(list.html).toContain(`<ul class="plain-list">${API_SCOPES.map((scope) => `<li><code>${scope}</code></li>`).join('')}</ul>`);
    expect(list.html).not.toContain('<code>api</code>');
  });

  it('adds, edits and deletes a resource through the forms', async () => {
    const form = await get(staff, '/admin/resources/new');
    expect(form.html).toContain('name="access_token_ttl"');
    expect(form.html).toContain('value="3600"');
    expect(form.html).toMatch(/value="jwt" checked/);

    const identifier = uniqueIdentifier();
    const added = await submit(staff, '/admin/resources/new', '/admin/resources/new', {
      identifier,
      name: 'Orders',
      scopes: 'read:orders  write:orders',
      access_token_ttl: '600',
      access_token_format: 'jwt',
    });
    expect(added.status, added.html).toBe(303);
    const stored = await fx.server.latchkey.services.resourceService.findByIdentifier(identifier);
    expect(stored).toMatchObject({ name: 'Orders', scopes: ['read:orders', 'write:orders'], accessTokenTtl: 600, accessTokenFormat: 'jwt', builtIn: false });
    expect(added.location).toBe(`/admin/resources/${stored!.id}?done=resource-created`);
    const after = await get(staff, added.location!);
    expect(after.html).toContain('The API resource was added.');
    expect(after.html).toContain('value="read:orders write:orders"');
    expect((await get(staff, '/admin/resources')).html).toContain(`href="/admin/resources/${stored!.id}"`);

    const edited = await submit(staff, `/admin/resources/${stored!.id}`, `/admin/resources/${stored!.id}`, {
      identifier,
      name: 'Orders v2',
      scopes: 'read:orders',
      access_token_ttl: '120',
      access_token_format: 'opaque',
    });
    expect(edited.status, edited.html).toBe(303);
    expect(edited.location).toBe(`/admin/resources/${stored!.id}?done=resource-saved`);
    expect(await fx.server.latchkey.services.resourceService.get(stored!.id)).toMatchObject({ name: 'Orders v2', scopes: ['read:orders'], accessTokenTtl: 120, accessTokenFormat: 'opaque' });

    const confirm = await get(staff, `/admin/resources/${stored!.id}/delete`);
    expect(confirm.status).toBe(200);
    expect(confirm.html).toContain('Delete API resource?');
    expect(confirm.html).toContain(identifier);
    expect(await fx.server.latchkey.services.resourceService.findByIdentifier(identifier)).toMatchObject({ identifier });
    const deleted = await submit(staff, `/admin/resources/${stored!.id}/delete`, '/delete', {});
    expect(deleted.status).toBe(303);
    expect(deleted.location).toBe('/admin/resources?done=resource-deleted');
    expect(await fx.server.latchkey.services.resourceService.findByIdentifier(identifier)).toBeUndefined();
    expect((await get(staff, deleted.location!)).html).toContain('The API resource was deleted.');
    expect((await get(staff, `/admin/resources/${stored!.id}`)).status).toBe(404);
  });

  it('re-renders the form with field messages and the typed values; 409 for a taken identifier', async () => {
    const before = await rows();
    const invalid = await submit(staff, '/admin/resources/new', '/admin/resources/new', {
      identifier: 'https://bad.example.com/#frag',
      name: 'Typed name',
      scopes: 'read openid read',
      access_token_ttl: '30',
      access_token_format: 'jwt',
    });
    expect(invalid.status).toBe(400);
    expect(invalid.html).toContain('Must not contain a fragment (#).');
    expect(invalid.html).toContain('is an OpenID Connect scope');
    expect(invalid.html).toContain('is listed twice');
    expect(invalid.html).toContain('Must be a whole number of seconds from 60 to 86400.');
    expect(invalid.html).toContain('value="Typed name"');
    expect(invalid.html).toContain('aria-invalid="true" aria-describedby="identifier-error"');

    const notNumber = await submit(staff, '/admin/resources/new', '/admin/resources/new', { identifier: uniqueIdentifier(), access_token_ttl: 'an hour', access_token_format: 'jwt' });
    expect(notNumber.status).toBe(400);
    expect(notNumber.html).toContain('Enter a whole number of seconds.');

    const taken = await submit(staff, '/admin/resources/new', '/admin/resources/new', { identifier: `${fx.server.url}/api`, access_token_ttl: '3600', access_token_format: 'jwt' });
    expect(taken.status).toBe(409);
    expect(taken.html).toContain('A resource with that identifier already exists.');
    expect(await rows()).toEqual(before);
  });

  it('shows the built-in resource read-only and refuses to change or delete it', async () => {
    const page = await get(staff, '/admin/resources/0');
    expect(page.status).toBe(200);
    expect(page.html).toContain('cannot be edited or deleted');
    expect(page.html).toContain(`<dt>Scopes</dt><dd>${API_SCOPES.join(' ')}</dd>`);
    expect(page.html).not.toContain('<form method="post" action="/admin/resources/0"');
    expect(page.html).not.toContain('/admin/resources/0/delete"');
    const csrf = await cookie(staff, 'lk.csrf');
    const edit = await post(staff, '/admin/resources/0', { csrf, identifier: 'https://hijack.example.com/', scopes: 'api admin superuser', access_token_ttl: '3600', access_token_format: 'jwt' });
    expect(edit.status).toBe(403);
    const remove = await post(staff, '/admin/resources/0/delete', { csrf });
    expect(remove.status).toBe(403);
    expect(remove.html).toContain('cannot be deleted');
    expect(fx.server.latchkey.services.resourceService.builtIn.scopes).toEqual([...API_SCOPES]);
    expect((await get(staff, '/admin/resources/0')).html).toContain(`<dt>Scopes</dt><dd>${API_SCOPES.join(' ')}</dd>`);
    expect((await fx.server.latchkey.services.resourceService.list())[0]?.identifier).toBe(`${fx.server.url}/api`);
  });

  it('escapes what it renders', async () => {
    const identifier = `${uniqueIdentifier()}?q=%3Cscript%3E`;
    const created = await fx.server.latchkey.services.resourceService.create({ identifier, name: '<script>alert(1)</script>', scopes: ['a<b>'] });
    for (const path of ['/admin/resources', `/admin/resources/${created.id}`, `/admin/resources/${created.id}/delete`]) {
      const page = await get(staff, path);
      expect(page.html, path).not.toContain('<script>alert(1)</script>');
      expect(page.html, path).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
      expect(page.html, path).not.toContain('a<b>');
    }
  });

  it('refuses forms without this browser’s CSRF token with 403, changing nothing', async () => {
    const target = await fx.server.latchkey.services.resourceService.create({ identifier: uniqueIdentifier(), scopes: ['x'] });
    const before = await rows();
    const fields = { identifier: uniqueIdentifier(), scopes: 'y', access_token_ttl: '600', access_token_format: 'jwt' };
    for (const path of ['/admin/resources/new', `/admin/resources/${target.id}`, `/admin/resources/${target.id}/delete`]) {
      for (const csrf of [undefined, '', 'forged-token']) {
        const answer = await post(staff, path, csrf === undefined ? fields : { ...fields, csrf });
        expect(answer.status, `${path} csrf=${csrf}`).toBe(403);
        expect(answer.html, path).toContain(FORM_EXPIRED);
      }
    }
    expect(await rows()).toEqual(before);
  });

  it('is for staff only: 403 for signed-in people, the login page or 401 for anonymous ones', async () => {
    const target = await fx.server.latchkey.services.resourceService.create({ identifier: uniqueIdentifier(), scopes: ['x'] });
    const gets = ['/admin/resources', '/admin/resources/new', `/admin/resources/${target.id}`, `/admin/resources/${target.id}/delete`, '/admin/resources/0'];
    const posts: Array<[string, Record<string, string>]> = [
      ['/admin/resources/new', { identifier: uniqueIdentifier(), access_token_ttl: '600', access_token_format: 'jwt' }],
      [`/admin/resources/${target.id}`, { identifier: uniqueIdentifier(), access_token_ttl: '600', access_token_format: 'jwt' }],
      [`/admin/resources/${target.id}/delete`, {}],
    ];
    const before = await rows();

    const plain = new UserAgent();
    const plainUser = await makeUser(fx.server.latchkey);
    expect((await adminLogin(fx.server.url, plain, plainUser.username, PASSWORD)).response.status).toBe(403);
    for (const path of gets) expect((await get(plain, path)).status, path).toBe(403);
    const csrf = await cookie(plain, 'lk.csrf');
    for (const [path, fields] of posts) expect((await post(plain, path, { csrf, ...fields })).status, path).toBe(403);

    const anonymous = new UserAgent();
    for (const path of gets) {
      const response = await anonymous.fetch(url(path));
      expect(response.status, path).toBe(302);
      expect(response.headers.get('location'), path).toContain('/o/auth?');
    }
    for (const [path, fields] of posts) expect((await post(anonymous, path, fields)).status, path).toBe(401);
    expect(await rows()).toEqual(before);
  });

  it('answers 404 for resources that do not exist', async () => {
    for (const path of ['/admin/resources/999999', '/admin/resources/nope', '/admin/resources/999999/delete']) {
      const page = await get(staff, path);
      expect(page.status, path).toBe(404);
      expect(page.html).toContain('There is no such API resource.');
    }
  });
});
