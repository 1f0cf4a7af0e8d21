import { beforeAll, beforeEach, expect, it } from 'vitest';
import type { User } from '../../src/storage/users.js';
import { UserAgent } from '../helpers/browserless.js';
import { describeOnBackends, type ApiPair } from '../helpers/fixture.js';
import { PASSWORD_GRANT } from '../../src/oidc/password-grant.js';
import { makeClient, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';

/**
 * Bad input is a 4xx, never a 5xx, and never harms the database: every public endpoint (the
 * provider's, from discovery; every REST route; the interaction and account pages) gets NUL
 * bytes and control characters in each field, oversize bodies, huge strings and wrong types.
 * A NUL is what PostgreSQL refuses in text (a 500 until the edge refused it), SQLite stores.
 */

const NUL = 'a\u0000b';
const HUGE = 'x'.repeat(50_000);
/** Bigger than every body limit (64 kB ours, 56 kB the provider's). */
const OVERSIZE = 'x'.repeat(300_000);

/** Field names the endpoints read: identifiers, secrets, names, URIs. */
const FIELDS = [
  'client_id',
  'client_secret',
  'username',
  'password',
  'email',
  'refresh_token',
  'token',
  'code',
  'redirect_uri',
  'scope',
  'state',
  'nonce',
  'grant_type',
  'response_type',
  'user_code',
  'device_code',
  'request_uri',
  'login_hint',
  'id_token_hint',
  'post_logout_redirect_uri',
  'client_name',
  'first_name',
  'last_name',
  'name',
  'identifier',
  'search',
  'otp',
  'current_password',
  'refresh',
  'access',
];

interface Probe {
  label: string;
  status: number;
  text: string;
}

describeOnBackends('bad input (%s)', (fx) => {
  let known: User;
  /** What the REST routes' paths name: never `known`, whose sign-in the last test checks. */
  let victim: User;
  let victimClientId: string;
  let staff: User;
  let staffTokens: ApiPair;
  let clientId: string;
  let clientSecret: string;
  let endpoints: string[];
  let counts: { users: number; clients: number };
  /** Every answer that was not a 4xx where one was due, or was a 5xx anywhere. */
  const wrong: string[] = [];
  beforeEach(() => {
    wrong.length = 0;
  });

  const count = async () => ({ users: await fx.server.latchkey.storage.users.count(), clients: Number((await fx.server.latchkey.storage.knex('clients').count({ n: '*' }))[0]?.['n']) });

  async function send(label: string, url: string, init: RequestInit, { agent, must4xx = true }: { agent?: UserAgent; must4xx?: boolean } = {}): Promise<Probe> {
    const response = agent ? await agent.fetch(url, init) : await fetch(url, { ...init, redirect: 'manual' });
    const probe = { label, status: response.status, text: await response.text() };
    if (probe.status >= 500 || (must4xx && (probe.status < 400 || probe.status >= 500))) wrong.push(`${probe.status} ${label}: ${probe.text.slice(0, 200)}`);
    return probe;
  }
  const form = (fields: Record<string, string>, headers: Record<string, string> = {}): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
  const json = (body: unknown, headers: Record<string, string> = {}, method = 'POST'): RequestInit => ({
    method,
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const basic = () => ({ authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}` });

  beforeAll(async () => {
    const latchkey = fx.server.latchkey;
    known = await fx.makeUser({ username: 'known' });
    victim = await fx.makeUser();
    victimClientId = (await makeClient(latchkey)).client.clientId;
    staff = await fx.makeUser({ isStaff: true, isSuperuser: true });
    staffTokens = await fx.apiLogin(staff.username);
    const registered = await makeClient(latchkey, { grantTypes: ['authorization_code', 'refresh_token', PASSWORD_GRANT] });
    clientId = registered.client.clientId;
    clientSecret = registered.clientSecret!;
    const discovery = (await (await fetch(`${latchkey.config.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    endpoints = [...new Set(Object.entries(discovery).filter(([key, value]) => key.endsWith('_endpoint') && typeof value === 'string').map(([, value]) => value as string))];
    endpoints.push(`${latchkey.config.issuer}/device`);
    counts = await count();
  });

  it("answers NUL bytes, huge strings and oversize bodies at the provider's endpoints with an OAuth 4xx", async () => {
    expect(endpoints.length).toBeGreaterThan(6);
    for (const endpoint of endpoints) {
      for (const field of FIELDS) {
        const base: Record<string, string> = { client_id: clientId, grant_type: 'refresh_token', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT_URI };
        await send(`POST ${endpoint} ${field}=NUL`, endpoint, form({ ...base, [field]: NUL }));
        await send(`POST ${endpoint} ${field}=NUL (client authenticated)`, endpoint, form({ ...base, client_id: clientId, [field]: NUL }, basic()));
        await send(`GET ${endpoint}?${field}=NUL`, `${endpoint}?${new URLSearchParams({ ...base, [field]: NUL })}`, { headers: { accept: 'application/json' } });
      }
      await send(`POST ${endpoint} oversize`, endpoint, form({ client_id: clientId, state: OVERSIZE }));
      await send(`POST ${endpoint} huge client_id`, endpoint, form({ client_id: HUGE, grant_type: 'refresh_token', refresh_token: HUGE }));
    }
    const token = `${fx.server.latchkey.config.issuer}/token`;
    // A NUL inside a client assertion passes the edge (base64url there); the provider takes
    // its sub as the client_id: the adapters never look it up.
    const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const assertion = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ iss: NUL, sub: NUL, aud: token, exp: Math.floor(Date.now() / 1000) + 60, jti: 'j' })}.c2ln`;
    for (const endpoint of [token, `${token}/introspection`, `${token}/revocation`]) {
      const answer = await send(
        `POST ${endpoint} client_assertion sub=NUL`,
        endpoint,
        form({ grant_type: 'refresh_token', refresh_token: 'x', token: 'x', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }),
      );
      expect(JSON.parse(answer.text), answer.text).toMatchObject({ error: 'invalid_client' });
    }
    await send('password grant with NUL username', token, form({ grant_type: 'password', username: `known${'\u0000'}`, password: PASSWORD }, basic()));
    await send('password grant with huge username', token, form({ grant_type: 'password', username: HUGE, password: PASSWORD }, basic()));
    // Dynamic registration: a 50 kB name, NULs, wrong types.
    const reg = `${fx.server.latchkey.config.issuer}/reg`;
    for (const metadata of [
      { redirect_uris: [REDIRECT_URI], client_name: HUGE },
      { redirect_uris: [REDIRECT_URI], client_name: NUL },
      { redirect_uris: [`${REDIRECT_URI}?x=${'\u0000'}`] },
      { redirect_uris: REDIRECT_URI, client_name: 42 },
      { redirect_uris: [REDIRECT_URI], client_uri: `https://example.com/${HUGE}` },
      { redirect_uris: [REDIRECT_URI], contacts: [NUL] },
    ]) {
      await send(`POST /o/reg ${JSON.stringify(metadata).slice(0, 80)}`, reg, json(metadata));
    }
    expect(wrong).toEqual([]);
  });

  it('answers POST /o/device without a session with a 4xx', async () => {
    await send('POST /o/device (no session)', `${fx.server.latchkey.config.issuer}/device`, form({ user_code: 'ABCD-EFGH' }));
    await send('POST /o/device (no session, no body)', `${fx.server.latchkey.config.issuer}/device`, { method: 'POST', headers: { accept: 'application/json' } });
    expect(wrong).toEqual([]);
  });

  it('answers NUL bytes, huge strings, wrong types and oversize bodies at every REST route with a 4xx', async () => {
    const routes = fx.server.latchkey.apiRoutes;
    expect(routes.length).toBeGreaterThan(20);
    for (const route of routes) {
      const method = route.method.toUpperCase();
      // A DELETE needs no body: it names nothing that exists, so it answers 404 whatever it carries.
      const param = (name: string) => (method === 'DELETE' ? 'no-such-thing' : name === 'id' ? String(route.path.includes('/users') ? victim.id : 1) : victimClientId);
      const path = route.path.replace(/:(\w+)/g, (_m, name: string) => param(name)).replace(/\/?$/, '/');
      const url = fx.url(path);
      if (method === 'GET' || method === 'HEAD') {
        for (const field of ['search', 'ordering', 'page', 'page_size', 'cursor', 'action', 'actor']) {
          await send(`${method} ${path}?${field}=NUL`, `${url}?${field}=${encodeURIComponent(NUL)}`, { method, headers: { authorization: `Bearer ${staffTokens.access}`, accept: 'application/json' } }, { must4xx: false });
        }
        continue;
      }
      // Routes that read no body (rotate-secret) may act whatever it holds: they only must not fail.
      const readsBody = !route.path.endsWith('rotate-secret');
      for (const auth of [{}, { authorization: `Bearer ${staffTokens.access}` }] as Array<Record<string, string>>) {
        const who = auth['authorization'] ? 'staff' : 'anonymous';
        for (const field of FIELDS) {
          const must4xx = readsBody || !auth['authorization'];
          await send(`${method} ${path} ${who} json ${field}=NUL`, url, json({ [field]: NUL }, auth, method), { must4xx });
          await send(`${method} ${path} ${who} form ${field}=NUL`, url, { ...form({ [field]: NUL }, auth), method }, { must4xx });
          await send(`${method} ${path} ${who} json ${field}=huge`, url, json({ [field]: HUGE }, auth, method), { must4xx });
          await send(`${method} ${path} ${who} json ${field}=[]`, url, json({ [field]: [1, { a: 2 }] }, auth, method), { must4xx });
        }
        await send(`${method} ${path} ${who} oversize`, url, json({ name: OVERSIZE }, auth, method), { must4xx: readsBody || !auth['authorization'] });
      }
    }
    expect(wrong).toEqual([]);
  });

  it('re-renders the login and account pages, or answers 413/400, for oversize forms and NUL bytes', async () => {
    // An interaction of a real authorization request.
    const agent = new UserAgent();
    const auth = await agent.fetch(`${fx.server.latchkey.config.issuer}/auth?${new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT_URI, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' })}`);
    expect(auth.status, await auth.clone().text()).toBe(303);
    const interaction = new URL(auth.headers.get('location')!, fx.url()).pathname;
    expect(interaction).toMatch(/^\/interaction\//);
    const page = await agent.fetch(fx.url(interaction));
    const csrf = /name="csrf" value="([^"]*)"/.exec(await page.text())?.[1] ?? '';
    await send('login oversize', fx.url(`${interaction}/login`), form({ csrf, username: OVERSIZE, password: PASSWORD }), { agent });
    for (const field of ['username', 'password']) {
      await send(`login ${field}=NUL`, fx.url(`${interaction}/login`), form({ csrf, username: 'known', password: PASSWORD, [field]: NUL }), { agent });
    }
    await send('login huge username', fx.url(`${interaction}/login`), form({ csrf, username: HUGE, password: PASSWORD }), { agent });
    await send('interaction uid NUL', fx.url(`/interaction/${encodeURIComponent(NUL)}/login`), form({ csrf, username: 'known', password: PASSWORD }), { agent });

    const anonymous = new UserAgent();
    const forgot = await anonymous.fetch(fx.url('/account/password/forgot'));
    const forgotCsrf = /name="csrf" value="([^"]*)"/.exec(await forgot.text())?.[1] ?? '';
    await send('forgot oversize', fx.url('/account/password/forgot'), form({ csrf: forgotCsrf, email: OVERSIZE }), { agent: anonymous });
    await send('forgot email=NUL', fx.url('/account/password/forgot'), form({ csrf: forgotCsrf, email: `known${'\u0000'}@example.com` }), { agent: anonymous });
    await send('reset token=NUL', fx.url(`/account/password/reset?token=${encodeURIComponent(NUL)}`), { headers: { accept: 'text/html' } }, { agent: anonymous });
    await send('verify token=NUL', fx.url(`/account/verify-email?token=${encodeURIComponent(NUL)}`), { headers: { accept: 'text/html' } }, { agent: anonymous });

    // Signed in: the profile and the admin forms.
    const person = await fx.signIn(known, { path: '/account/' });
    const profile = await person.fetch(fx.url('/account/'));
    const profileCsrf = /name="csrf" value="([^"]*)"/.exec(await profile.text())?.[1] ?? '';
    for (const field of ['username', 'first_name', 'last_name', 'email']) {
      await send(`profile ${field}=NUL`, fx.url('/account/profile'), form({ csrf: profileCsrf, username: 'known', first_name: 'A', last_name: 'B', email: known.email!, current_password: PASSWORD, [field]: NUL }), { agent: person });
    }
    await send('profile oversize', fx.url('/account/profile'), form({ csrf: profileCsrf, first_name: OVERSIZE }), { agent: person });

    const admin = await fx.signIn(staff);
    const adminPage = await admin.fetch(fx.url('/admin/users/new'));
    const adminCsrf = /name="csrf" value="([^"]*)"/.exec(await adminPage.text())?.[1] ?? '';
    for (const [path, fields] of [
      ['/admin/users/new', { username: 'fuzzed', password: PASSWORD, first_name: 'F' }],
      ['/admin/applications/new', { name: 'Fuzzed', redirect_uris: REDIRECT_URI, grant_types: 'authorization_code', client_type: 'confidential', scope: 'openid' }],
      ['/admin/resources/new', { identifier: 'https://fuzz.example/', name: 'Fuzz', scopes: 'read' }],
    ] as const) {
      for (const field of Object.keys(fields)) {
        await send(`${path} ${field}=NUL`, fx.url(path), form({ csrf: adminCsrf, ...fields, [field]: NUL }), { agent: admin });
        await send(`${path} ${field}=huge`, fx.url(path), form({ csrf: adminCsrf, ...fields, [field]: 'y'.repeat(20_000) }), { agent: admin });
      }
    }
    expect(wrong).toEqual([]);
  });

  it('leaves the database intact: the same accounts and clients, and the known user still signs in', async () => {
    expect(await count()).toEqual(counts);
    await fx.apiLogin(known.username);
    const renamed = await fx.server.latchkey.storage.users.findById(known.id);
    expect(renamed).toMatchObject({ username: 'known', firstName: known.firstName, lastName: known.lastName, email: known.email });
  });
});
