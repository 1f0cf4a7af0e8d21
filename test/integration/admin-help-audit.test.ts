import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, expect, it } from 'vitest';
import { adminLogin } from '../helpers/admin.js';
import { UserAgent } from '../helpers/browserless.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { discover, loginAndExchange, makeClient, makeUser, PASSWORD } from '../helpers/rp.js';

const run = promisify(execFile);
const FORM_EXPIRED = 'This form has expired';

/** The text of a rendered `<code id="…">`, unescaped as a browser shows it. */
function codeOf(html: string, id: string): string {
  const raw = new RegExp(`<code id="${id}">([\\s\\S]*?)</code>`).exec(html)?.[1];
  if (raw === undefined) throw new Error(`no <code id="${id}">`);
  return raw.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}

/** One curl command of a snippet: the lines from `# heading` to the next blank line. */
function commandAfter(snippet: string, heading: string): string {
  const start = snippet.indexOf(heading);
  if (start < 0) throw new Error(`no "${heading}" in:\n${snippet}`);
  const body = snippet.slice(start + heading.length).trimStart();
  return body.split('\n\n')[0]!;
}

describeOnBackends('admin help, audit log and a user’s access (%s)', (fx) => {
  let staff: UserAgent;
  let staffName: string;
  const { get, post, submit, signIn } = fx;

  async function cookie(agent: UserAgent, name: string) {
    return (await agent.jar.getCookies(fx.server.url)).find((c) => c.key === name)?.value ?? '';
  }

  beforeAll(async () => {
    const user = await makeUser(fx.server.latchkey, { isStaff: true });
    staffName = user.username;
    staff = await signIn(user);
  });

  it('shows how to connect an application with its real values, never its secret, and the curl snippets work as written', async () => {
    // A redirect URI with characters that need escaping in HTML and quoting in a shell.
    const redirect = "http://127.0.0.1:8787/cb?a=1&b='x'";
    const { client, clientSecret } = await makeClient(fx.server.latchkey, {
      name: 'Helpful <app>',
      redirectUris: [redirect],
      grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
      scope: 'openid profile email offline_access',
    });
    const page = await get(staff, `/admin/applications/${encodeURIComponent(client.clientId)}`);
    expect(page.status).toBe(200);
    const issuer = `${fx.server.url}/o`;
    expect(page.html).toContain(`data-testid="issuer">${issuer}<`);
    expect(page.html).toContain(`data-testid="discovery">${issuer}/.well-known/openid-configuration<`);
    for (const endpoint of ['/auth', '/token', '/me', '/jwks', '/session/end']) expect(page.html).toContain(`${issuer}${endpoint}<`);
    expect(page.html).not.toContain(clientSecret!);
    expect(page.html).toContain('<script src="/static/copy.js" defer></script>');
    expect(page.html).not.toMatch(/<script>|<script(?![^>]*src=)/);
    // Escaped: the quote and ampersand of the redirect URI arrive as entities.
    expect(page.html).toContain('b=&#39;x&#39;');
    expect(page.html).not.toContain("b='x'");

    const node = codeOf(page.html, 'snippet-node-code');
    expect(node).toContain(`new URL(${JSON.stringify(issuer)})`);
    expect(node).toContain(JSON.stringify(client.clientId));
    expect(node).toContain('client.ClientSecretBasic(process.env.LATCHKEY_CLIENT_SECRET)');
    expect(node).toContain('client.allowInsecureRequests');
    expect(node).toContain(`redirect_uri: ${JSON.stringify(redirect)}`);
    const django = codeOf(page.html, 'snippet-django-code');
    expect(django).toContain(`OIDC_RP_CLIENT_ID = ${JSON.stringify(client.clientId)}`);
    expect(django).toContain('OIDC_RP_CLIENT_SECRET = os.environ["LATCHKEY_CLIENT_SECRET"]');
    expect(django).toContain('OIDC_TOKEN_USE_BASIC_AUTH = True');
    expect(django).toContain(`OIDC_OP_USER_ENDPOINT = "${issuer}/me"`);
    const apache = codeOf(page.html, 'snippet-apache-code');
    expect(apache).toContain(`OIDCProviderMetadataURL "${issuer}/.well-known/openid-configuration"`);
    expect(apache).toContain(`OIDCClientID "${client.clientId}"`);
    expect(apache).toContain('OIDCClientSecret "<client secret>"');
    expect(apache).toContain(`OIDCRedirectURI "${redirect}"`);

    // The curl commands, run by a shell exactly as shown, with the secret in the variable they read.
    const curl = codeOf(page.html, 'snippet-curl-code');
    const env = { ...process.env, LATCHKEY_CLIENT_SECRET: clientSecret! };
    const discovery = await run('bash', ['-c', commandAfter(curl, '# What Latchkey publishes')], { env });
    expect(JSON.parse(discovery.stdout)).toMatchObject({ issuer });
    const token = await run('bash', ['-c', `${commandAfter(curl, '# A token for the application itself (client credentials)')} -sS`], { env });
    expect(JSON.parse(token.stdout)).toMatchObject({ token_type: 'Bearer', access_token: expect.any(String) });
    // With a wrong secret the same command is refused: the snippet really carries the client's authentication.
    const refused = await run('bash', ['-c', `${commandAfter(curl, '# A token for the application itself (client credentials)')} -sS`], { env: { ...env, LATCHKEY_CLIENT_SECRET: 'wrong' } });
    expect(JSON.parse(refused.stdout)).toMatchObject({ error: 'invalid_client' });
  });

  it('fits the snippets to the client: public clients get no secret, client_secret_post sends it in the body', async () => {
    const { client: spa } = await makeClient(fx.server.latchkey, { name: 'SPA', isPublic: true, grantTypes: ['authorization_code'] });
    const spaPage = await get(staff, `/admin/applications/${encodeURIComponent(spa.clientId)}`);
    expect(codeOf(spaPage.html, 'snippet-node-code')).toContain('client.None()');
    expect(codeOf(spaPage.html, 'snippet-node-code')).not.toContain('LATCHKEY_CLIENT_SECRET');
    expect(codeOf(spaPage.html, 'snippet-apache-code')).toContain('OIDCProviderTokenEndpointAuth none');
    expect(codeOf(spaPage.html, 'snippet-curl-code')).not.toContain('LATCHKEY_CLIENT_SECRET');

    const { client: machine, clientSecret } = await makeClient(fx.server.latchkey, {
      name: 'Machine',
      redirectUris: [],
      grantTypes: ['client_credentials'],
      tokenEndpointAuthMethod: 'client_secret_post',
    });
    const machinePage = await get(staff, `/admin/applications/${encodeURIComponent(machine.clientId)}`);
    // No browser sign-in: no Django or Apache snippet.
    expect(machinePage.html).not.toContain('id="snippet-django-code"');
    expect(machinePage.html).not.toContain('id="snippet-apache-code"');
    const curl = codeOf(machinePage.html, 'snippet-curl-code');
    expect(curl).toContain('-d client_secret="$LATCHKEY_CLIENT_SECRET"');
    const token = await run('bash', ['-c', `${commandAfter(curl, '# A token for the application itself (client credentials)')} -sS`], {
      env: { ...process.env, LATCHKEY_CLIENT_SECRET: clientSecret! },
    });
    expect(JSON.parse(token.stdout)).toMatchObject({ access_token: expect.any(String) });
  });

  it('names the bad line of the redirect URIs next to the field, keeps what was typed, and shows the device grant in words', async () => {
    const bad = await submit(staff, '/admin/applications/new', '/admin/applications/new', {
      name: 'Lines',
      redirect_uris: 'https://app.example.com/callback\nnot a url\n\nhttps://app.example.com/cb#frag',
      grant_types: ['authorization_code'],
      client_type: 'confidential',
      scope: 'openid',
    });
    expect(bad.status).toBe(400);
    expect(bad.html).toMatch(/<textarea id="redirect_uris"[^>]*aria-invalid="true" aria-describedby="redirect_uris-error"/);
    expect(bad.html).toContain('<p class="field-error" id="redirect_uris-error">line 2: not an absolute URL');
    expect(bad.html).toContain('line 4: a redirect URI cannot have a #fragment.');
    expect(bad.html).toContain('not a url');
    expect((await fx.server.latchkey.storage.clients.list()).some((c) => c.name === 'Lines')).toBe(false);

    const { client } = await makeClient(fx.server.latchkey, { name: 'TV', isPublic: true, redirectUris: [], grantTypes: ['urn:ietf:params:oauth:grant-type:device_code'] });
    const list = await get(staff, '/admin/applications');
    const row = new RegExp(`<tr>(?:(?!</tr>)[\\s\\S])*${client.clientId}[\\s\\S]*?</tr>`).exec(list.html)?.[0] ?? '';
    expect(row).toContain('Device sign-in');
    expect(list.html).not.toContain('urn:ietf:params:oauth:grant-type:device_code');
    const edit = await get(staff, `/admin/applications/${encodeURIComponent(client.clientId)}`);
    expect(edit.html).toContain('Device sign-in (TVs and command-line tools');
    expect(edit.html).toContain(`${fx.server.url}/o/device/auth<`);
  });

  it('lists the audit log newest first, filtered by event, user, client and time, 50 a page', async () => {
    const { audit } = fx.server.latchkey.services;
    const victim = await makeUser(fx.server.latchkey);
    // Real events: a failed and a successful login of the victim, an application registered by staff.
    const wrong = await fetch(fx.url('/api/token/'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: victim.username, password: 'not the password' }) });
    expect(wrong.status).toBe(401);
    const right = await fetch(fx.url('/api/token/'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: victim.username, password: PASSWORD }) });
    expect(right.status).toBe(200);
    const registered = await submit(staff, '/admin/applications/new', '/admin/applications/new', {
      name: 'Audited app',
      redirect_uris: 'https://audited.example.com/cb',
      grant_types: ['authorization_code'],
      client_type: 'confidential',
      scope: 'openid',
    });
    expect(registered.status).toBe(200);
    const clientId = (await fx.server.latchkey.storage.clients.list()).find((c) => c.name === 'Audited app')!.clientId;

    const rows = (html: string) => [...html.matchAll(/<tr data-event="([^"]+)">/g)].map((m) => m[1]);
    const all = await get(staff, '/admin/audit');
    expect(all.status).toBe(200);
    expect(rows(all.html)[0]).toBe('client.created');

    const failures = await get(staff, '/admin/audit?event=login.failure');
    expect(rows(failures.html).length).toBeGreaterThan(0);
    expect(new Set(rows(failures.html))).toEqual(new Set(['login.failure']));
    const family = await get(staff, `/admin/audit?event=login.*&user=${encodeURIComponent(victim.username)}`);
    expect(new Set(rows(family.html))).toEqual(new Set(['login.failure', 'login.success']));

    const byUser = await get(staff, `/admin/audit?user=${encodeURIComponent(victim.username.toUpperCase())}`);
    expect(rows(byUser.html).sort()).toEqual(['login.failure', 'login.success']);
    const byClient = await get(staff, `/admin/audit?client=${encodeURIComponent(clientId)}`);
    expect(rows(byClient.html)).toEqual(['client.created']);
    expect(byClient.html).toContain(`<a href="/admin/users/`);
    expect(byClient.html).toContain(staffName);

    const nowMinute = new Date().toISOString().slice(0, 16);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect(rows((await get(staff, `/admin/audit?from=${tomorrow}`)).html)).toEqual([]);
    expect(rows((await get(staff, `/admin/audit?client=${encodeURIComponent(clientId)}&from=2000-01-01&to=${nowMinute}`)).html)).toEqual(['client.created']);
    expect(rows((await get(staff, `/admin/audit?client=${encodeURIComponent(clientId)}&to=2000-01-01`)).html)).toEqual([]);

    // 60 more events: two pages, the filters kept in the links; a page past the end shows the last.
    for (let i = 0; i < 60; i++) await audit.record('test.paging', { actor: 'paging-test', details: { i } });
    const first = await get(staff, '/admin/audit?event=test.paging');
    expect(first.html).toContain('60 events · page 1 of 2');
    expect(rows(first.html)).toHaveLength(50);
    expect(first.html).toContain('{&quot;i&quot;:59}');
    expect(first.html).toContain('href="/admin/audit?event=test.paging&amp;page=2"');
    const second = await get(staff, '/admin/audit?event=test.paging&page=2');
    expect(rows(second.html)).toHaveLength(10);
    expect(second.html).toContain('{&quot;i&quot;:0}');
    expect(rows((await get(staff, '/admin/audit?event=test.paging&page=999999')).html)).toHaveLength(10);
    expect((await get(staff, '/admin/audit?page=abc')).status).toBe(200);
  });

  it('re-renders the audit filters with a message for bad values, never a 500', async () => {
    const cases: Array<[string, string, string]> = [
      ['event=%3Cscript%3E', 'event', 'Not an event name'],
      ['from=yesterday', 'from', 'Not a date and time'],
      ['from=2026-02-30', 'from', 'Not a date and time'],
      ['to=2026-13-01T10:00', 'to', 'Not a date and time'],
      ['from=2026-12-02&to=2026-12-01', 'to', 'The end must come after the start.'],
      [`client=${'x'.repeat(250)}`, 'client', 'A client ID has at most 200 characters.'],
      ['user=%E2%80%AE%00', '', ''],
    ];
    for (const [query, field, text] of cases) {
      const answer = await get(staff, `/admin/audit?${query}`);
      if (!field) {
        expect(answer.status, query).toBeLessThan(500);
        continue;
      }
      expect(answer.status, query).toBe(400);
      expect(answer.html, query).toContain('Please correct the filters marked below.');
      expect(answer.html, query).toContain(`<p class="field-error" id="${field}-error">${text}`);
      expect(answer.html, query).toMatch(new RegExp(`<input id="${field}"[^>]*aria-invalid="true"`));
      expect(answer.html, query).not.toContain('<script>');
    }
    // An array of values (?event=a&event=b) is not a filter value either: no 500.
    expect((await get(staff, '/admin/audit?event=a&event=b')).status).toBe(200);
  });

  it('shows a user’s sessions and connected apps to staff, who may end and revoke them (CSRF checked, audited as staff)', async () => {
    const latchkey = fx.server.latchkey;
    const person = await makeUser(latchkey);
    const { client, clientSecret } = await makeClient(latchkey, { name: 'Photo <Book>', grantTypes: ['authorization_code', 'refresh_token'], scope: 'openid profile offline_access' });
    const config = await discover(`${fx.server.url}/o`, client.clientId, clientSecret);
    const browser = new UserAgent();
    await loginAndExchange(config, browser, { username: person.username, password: PASSWORD }, { scope: 'openid profile offline_access', prompt: 'consent' });
    const page = `/admin/users/${person.id}`;
    const shown = await get(staff, page);
    expect(shown.status).toBe(200);
    expect(shown.html).toContain('Photo &lt;Book&gt;');
    // The session names the browser that signed in (Node's fetch here) and its IP.
    expect(shown.html).toMatch(/<p data-testid="session-device">Node\.js · (127\.0\.0\.1|::1|::ffff:127\.0\.0\.1)<\/p>/);
    const [session] = await latchkey.services.selfService.sessions(person);
    const [app] = await latchkey.services.selfService.connectedApps(person);
    expect(session && app).toBeTruthy();
    expect(shown.html).toContain(`/admin/users/${person.id}/sessions/${encodeURIComponent(session!.id)}/end`);
    expect(shown.html).toContain(`/admin/users/${person.id}/applications/${encodeURIComponent(app!.id)}/revoke`);

    // Without this browser's CSRF token, and for non-staff: refused, nothing ends.
    const endPath = `/admin/users/${person.id}/sessions/${encodeURIComponent(session!.id)}/end`;
    const revokePath = `/admin/users/${person.id}/applications/${encodeURIComponent(app!.id)}/revoke`;
    for (const path of [endPath, revokePath]) {
      const noCsrf = await post(staff, path, {});
      expect(noCsrf.status, path).toBe(403);
      expect(noCsrf.html).toContain(FORM_EXPIRED);
    }
    const plain = new UserAgent();
    const plainUser = await makeUser(latchkey);
    expect((await adminLogin(fx.server.url, plain, plainUser.username, PASSWORD)).response.status).toBe(403);
    const plainCsrf = await cookie(plain, 'lk.csrf');
    for (const path of [endPath, revokePath]) expect((await post(plain, path, { csrf: plainCsrf })).status, path).toBe(403);
    const anonymous = new UserAgent();
    for (const path of [endPath, revokePath]) expect((await post(anonymous, path, {})).status, path).toBe(401);
    expect(await latchkey.services.selfService.sessions(person)).toHaveLength(1);
    expect(await latchkey.services.selfService.connectedApps(person)).toHaveLength(1);

    // Staff with the page's own form: revoked; the same grant again (no longer this person's): 404 with a message, not a 500.
    const other = await submit(staff, page, '/revoke', {}, {});
    expect(other.status).toBe(303);
    expect(other.location).toBe(`/admin/users/${person.id}?done=app-revoked#applications`);
    expect(await latchkey.services.selfService.connectedApps(person)).toHaveLength(0);
    const again = await post(staff, revokePath, { csrf: await cookie(staff, 'lk.csrf') });
    expect(again.status).toBe(404);
    expect(again.html).toContain('not connected to this account');
    const ended = await submit(staff, page, '/end', {});
    expect(ended.status).toBe(303);
    expect(await latchkey.services.selfService.sessions(person)).toHaveLength(0);
    const unknown = await post(staff, endPath, { csrf: await cookie(staff, 'lk.csrf') });
    expect(unknown.status).toBe(404);
    const after = await get(staff, `${page}?done=session-ended`);
    expect(after.html).toContain('The session was ended');
    expect(after.html).toContain('data-testid="no-sessions"');
    expect(after.html).toContain('data-testid="no-apps"');

    // The audit log names the staff member as actor, and the person as the one acted on.
    const { events } = await latchkey.services.audit.list({ offset: 0, limit: 10, user: { id: person.id, name: person.username } });
    const revoked = events.find((e) => e.event === 'grant.revoked');
    const endedEvent = events.find((e) => e.event === 'session.ended');
    expect(revoked).toMatchObject({ actor: staffName, target_type: 'grant', details: { client_id: client.clientId, via: 'admin', user_id: person.id } });
    expect(endedEvent).toMatchObject({ actor: staffName, target_type: 'user', target_id: String(person.id), details: { via: 'admin' } });
  });

  it('lets only superusers end a superuser’s sessions', async () => {
    const boss = await makeUser(fx.server.latchkey, { isStaff: true, isSuperuser: true });
    await signIn(boss);
    const [session] = await fx.server.latchkey.services.selfService.sessions(boss);
    const page = await get(staff, `/admin/users/${boss.id}`);
    expect(page.html).not.toContain('/sessions/');
    expect(page.html).toContain('Only a superuser may end');
    const refused = await post(staff, `/admin/users/${boss.id}/sessions/${encodeURIComponent(session!.id)}/end`, { csrf: await cookie(staff, 'lk.csrf') });
    expect(refused.status).toBe(403);
    expect(await fx.server.latchkey.services.selfService.sessions(boss)).toHaveLength(1);
  });

  it('filters GET /api/audit/ the same way: user_id, client_id, since, until, event families; bad values are 400', async () => {
    const staffUser = (await fx.server.latchkey.storage.users.findByLogin(staffName))!;
    const { access } = await fx.apiLogin(staffName);
    const person = await makeUser(fx.server.latchkey);
    const { audit } = fx.server.latchkey.services;
    await audit.record('test.rest', { actor: person.username, actorUserId: person.id, details: { n: 1 } });
    await audit.record('test.rest', { actor: 'someone', targetType: 'client', targetId: 'rest-client' });
    await audit.record('test.rest', { actor: staffUser.username, actorUserId: staffUser.id, targetType: 'grant', targetId: 'g1', details: { client_id: 'rest-client', user_id: person.id } });
    const events = async (query: string) => {
      const answer = await fx.api('GET', `/api/audit/?event=test.rest&page_size=100&${query}`, { token: access });
      expect(answer.status, answer.text).toBe(200);
      return (answer.json as { results: Array<{ actor: string; target_id: string | null }> }).results;
    };
    expect((await events(`user_id=${person.id}`)).map((e) => e.target_id)).toEqual(['g1', null]);
    expect((await events('client_id=rest-client')).map((e) => e.target_id)).toEqual(['g1', 'rest-client']);
    expect(await events(`since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).toEqual([]);
    expect(await events(`until=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).toHaveLength(3);
    const family = await fx.api('GET', '/api/audit/?event=test.*&page_size=100', { token: access });
    const names = (family.json as { results: Array<{ event: string }> }).results.map((e) => e.event);
    expect(names).toContain('test.rest');
    expect(names.every((n) => n.startsWith('test.'))).toBe(true);
    for (const bad of ['user_id=abc', 'since=yesterday', 'until=2026-12-07', `client_id=${'x'.repeat(201)}`]) {
      const answer = await fx.api('GET', `/api/audit/?${bad}`, { token: access });
      expect(answer.status, bad).toBe(400);
      expect(answer.json, bad).toMatchObject({ error: expect.any(String), error_description: expect.any(String) });
    }
  });

  it('keeps the audit log for staff: others get 403, anonymous browsers the login page', async () => {
    const plain = new UserAgent();
    const plainUser = await makeUser(fx.server.latchkey);
    await adminLogin(fx.server.url, plain, plainUser.username, PASSWORD);
    expect((await get(plain, '/admin/audit')).status).toBe(403);
    const anonymous = await new UserAgent().fetch(fx.url('/admin/audit'));
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.get('location')).toContain('/o/auth?');
  });
});
