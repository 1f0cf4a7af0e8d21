/**
 * A token does only what it was issued for. An app a person signs in to with `scope=openid`
 * gets a userinfo token: it reads /o/me and, read-only, /auth/me/, and nothing else. The REST
 * API takes tokens issued for it (RFC 8707 resource `${PUBLIC_URL}/api`) carrying the scope
 * each route names, tokens for other resources never, and Latchkey's own first-party
 * credentials as before. Every route is tried with each kind of token.
 */
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ApiRoute } from '../../src/web/api/openapi.js';
import { API_SCOPES, type ApiScope } from '../../src/core/resources/built-in.js';
import { REGISTRATION_POLICY } from '../../src/oidc/provider.js';
import type { User } from '../../src/storage/users.js';
import { formOf, UserAgent } from '../helpers/browserless.js';
import { callApi, type Answer } from '../helpers/http.js';
import { apiAuthorization, apiResourceOf, authorizationRequest, discover, loginAndExchange, makeClient, makeUser, PASSWORD } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';

const ORDERS = 'https://orders.example.com/api';

/** A refusal because the token was not issued for this: 403 with the RFC 6750 challenge naming the scope. */
function expectInsufficientScope(answer: Answer, scope: string, label: string): void {
  expect(answer.status, `${label}: ${answer.text}`).toBe(403);
  expect(answer.json['error'], label).toBe('insufficient_scope');
  expect(answer.json['error_description'], label).toEqual(expect.any(String));
  const challenge = answer.headers.get('www-authenticate') ?? '';
  expect(challenge, label).toMatch(/^Bearer error="insufficient_scope"/);
  expect(challenge, label).toContain(`scope="${scope}"`);
}

describeOnBackends('every token is confined to what it was issued for (%s)', (fx) => {
  /** A third-party app staff registered for every API scope (and the Orders API). */
  let printer: oidc.Configuration;
  let bob: User;
  let root: User;

  const api = fx.bearer;

  /** What a person signing in to `config` with these parameters hands the app. */
  async function tokensFor(person: User, params: Record<string, string>, config = printer) {
    return (await loginAndExchange(config, new UserAgent(), { username: person.username, password: PASSWORD }, params)).tokens;
  }

  beforeAll(async () => {
    await fx.server.latchkey.services.resourceService.create({ identifier: ORDERS, name: 'Orders API', scopes: ['orders:read'], accessTokenTtl: 600 });
    const made = await makeClient(fx.server.latchkey, { name: 'Photo Printer', apiScopes: [...API_SCOPES] });
    printer = await discover(fx.server.issuer, made.client.clientId, made.clientSecret);
    bob = await makeUser(fx.server.latchkey);
    root = await makeUser(fx.server.latchkey, { isStaff: true, isSuperuser: true });
  });

  it('the account takeover through a sign-in token fails at its first step', async () => {
    // 1. Bob signs in to the app with scope=openid; the consent page asks only to sign him in.
    const agent = new UserAgent();
    const { url } = await authorizationRequest(printer, { scope: 'openid' });
    let { response, url: at } = await agent.follow(url);
    const login = formOf(await response.text(), '/login');
    const posted = await agent.postForm(new URL(login.action, at), { csrf: login.csrf, username: bob.username, password: PASSWORD });
    ({ response, url: at } = await agent.follow(new URL(posted.headers.get('location') ?? '', at)));
    const consent = await response.text();
    expect(consent).toContain('Sign you in with your Latchkey account');
    expect(consent).not.toMatch(/Latchkey account details|Change or delete your|Manage your password|Administer Latchkey/);
    const { tokens } = await loginAndExchange(printer, new UserAgent(), { username: bob.username, password: PASSWORD }, { scope: 'openid' });
    const before = await fx.server.latchkey.storage.users.findById(bob.id);

    // 2. The app tries to move Bob's recovery address to itself: refused, nothing changes.
    const patch = await api('PATCH', `/api/users/${bob.id}/`, tokens.access_token, { email: 'evil@attacker.test' });
    expectInsufficientScope(patch, 'users:write', 'PATCH email with a sign-in token');
    expect(await fx.server.latchkey.storage.users.findById(bob.id)).toEqual(before);

    // 3. So a reset for that address reaches no account: no reset link exists for Bob.
    const forgotAgent = new UserAgent();
    const page = await forgotAgent.fetch(`${fx.server.url}/account/password/forgot`);
    const forgot = formOf(await page.text(), '/account/password/forgot');
    const asked = await forgotAgent.postForm(new URL(forgot.action, fx.server.url), { csrf: forgot.csrf, email: 'evil@attacker.test' });
    expect(asked.status).toBe(200);
    await fx.server.latchkey.services.background.settled();
    const links = await fx.server.latchkey.storage.knex('email_tokens').where({ user_id: bob.id, purpose: 'reset_password' }).count({ n: '*' }).first();
    expect(Number(links?.n)).toBe(0);
    expect(await fx.server.latchkey.storage.users.findByEmail('evil@attacker.test')).toBeUndefined();

    // 4. A superuser's sign-in token from the same app: no new superuser, no authenticator, no deletion.
    const rootTokens = await tokensFor(root, { scope: 'openid' });
    const usersBefore = await fx.server.latchkey.storage.users.count();
    const escalate = await api('POST', '/api/users/', rootTokens.access_token, { username: 'mallory_root', password: PASSWORD, email: 'm@attacker.test', is_superuser: true });
    expectInsufficientScope(escalate, 'users:write', 'POST a superuser with a sign-in token');
    expectInsufficientScope(await api('POST', '/api/me/two-factor/enroll/', rootTokens.access_token, { password: PASSWORD }), 'account', 'enroll an authenticator');
    expectInsufficientScope(await api('DELETE', `/api/users/${bob.id}/`, rootTokens.access_token), 'users:write', 'delete the victim');
    expectInsufficientScope(await api('GET', '/api/users/', rootTokens.access_token), 'users:read', 'list the users');
    expect(await fx.server.latchkey.storage.users.count()).toBe(usersBefore);
    expect(await fx.server.latchkey.services.twoFactor.status(root)).toMatchObject({ enabled: false, pending: false });
    expect(await fx.server.latchkey.storage.users.findById(bob.id)).toEqual(before);

    // What the token is for still works: /o/me, and /auth/me/ within its scopes (the id only).
    expect((await oidc.fetchUserInfo(printer, tokens.access_token, String(bob.id))).sub).toBe(String(bob.id));
    const me = await api('GET', '/auth/me/', tokens.access_token);
    expect(me.status, me.text).toBe(200);
    expect(me.json).toEqual({ id: bob.id });
  });

  it('/auth/me/ shows a sign-in token what its OpenID scopes allow, never the account flags', async () => {
    const tokens = await tokensFor(root, { scope: 'openid profile' });
    const me = await api('GET', '/auth/me/', tokens.access_token);
    expect(me.status, me.text).toBe(200);
    expect(Object.keys(me.json).sort()).toEqual(['first_name', 'id', 'last_name', 'updated_at', 'username']);
    expect(me.headers.get('cache-control')).toBe('no-store');
    const withEmail = await api('GET', '/auth/me/', (await tokensFor(root, { scope: 'openid email' })).access_token);
    expect(withEmail.json).toEqual({ id: root.id, email: root.email, email_verified: true });
  });

  describe('each REST route against each kind of token', () => {
    /** Tokens of the superuser `root`, so staff-only routes let a qualifying token through. */
    let tokens: { userinfo: string; otherResource: string; firstParty: string; without: Record<ApiScope, string>; only: Record<ApiScope, string> };
    let routes: Array<ApiRoute & { rule: NonNullable<ApiRoute['rule']> }>;

    beforeAll(async () => {
      routes = fx.server.latchkey.apiRoutes.filter((r): r is ApiRoute & { rule: NonNullable<ApiRoute['rule']> } => r.rule !== undefined);
      const all = await tokensFor(root, apiAuthorization(fx.server.latchkey, [...API_SCOPES]));
      expect((decodeJwt(all.access_token)['scope'] as string).split(' ').sort()).toEqual([...API_SCOPES].sort());
      // Narrower tokens from the same grant, as RFC 6749 section 6 lets a client ask.
      let refresh = all.refresh_token!;
      const narrowed = async (scopes: string[]) => {
        const next = await oidc.refreshTokenGrant(printer, refresh, { scope: scopes.join(' '), resource: apiResourceOf(fx.server.latchkey) });
        refresh = next.refresh_token ?? refresh;
        expect(String(decodeJwt(next.access_token)['scope'] ?? '').split(' ').filter(Boolean).sort()).toEqual([...scopes].sort());
        return next.access_token;
      };
      const without = {} as Record<ApiScope, string>;
      const only = {} as Record<ApiScope, string>;
      for (const scope of API_SCOPES) {
        without[scope] = await narrowed(API_SCOPES.filter((s) => s !== scope));
        only[scope] = await narrowed([scope]);
      }
      const firstParty = await api('POST', '/api/token/', undefined, { username: root.username, password: PASSWORD });
      expect(firstParty.status).toBe(200);
      tokens = {
        userinfo: (await tokensFor(root, { scope: 'openid profile email' })).access_token,
        otherResource: (await tokensFor(root, { scope: 'openid orders:read', resource: ORDERS })).access_token,
        firstParty: String(firstParty.json['access']),
        without,
        only,
      };
    });

    /** A harmless call of the route: unknown ids, an empty body (validation errors, 404s: never a change). */
    const tryRoute = (route: ApiRoute, token: string) =>
      api(
        route.method,
        route.path.replace(':id', '999999999').replace(':clientId', 'no-such-client'),
        token,
        route.method === 'GET' || route.method === 'DELETE' ? undefined : {},
      );
    const label = (route: ApiRoute, kind: string) => `${route.method} ${route.path} with ${kind}`;

    it('guards every REST route but the public ones', () => {
      const unguarded = fx.server.latchkey.apiRoutes.filter((r) => !r.rule).map((r) => `${r.method} ${r.path}`);
      // Anonymous by design: the JWT endpoints, the legacy login, the document itself.
      expect(unguarded.sort()).toEqual(['GET /api/openapi.json', 'POST /api/token', 'POST /api/token/refresh', 'POST /api/token/verify', 'POST /users/login']);
      expect(routes.length).toBeGreaterThan(20);
    });

    it('a sign-in (userinfo) token reaches only GET /auth/me/: 403 insufficient_scope everywhere else', async () => {
      for (const route of routes) {
        const answer = await tryRoute(route, tokens.userinfo);
        if (route.rule.userinfo) expect(answer.status, label(route, 'a userinfo token')).toBe(200);
        else expectInsufficientScope(answer, route.rule.scope, label(route, 'a userinfo token'));
        expect(answer.headers.get('cache-control'), label(route, 'a userinfo token')).toBe('no-store');
      }
    });

    it('a token for another resource is no token here: 401 invalid_token', async () => {
      for (const route of routes) {
        const answer = await tryRoute(route, tokens.otherResource);
        expect(answer.status, label(route, 'an Orders API token')).toBe(401);
        expect(answer.json['error']).toBe('invalid_token');
        expect(answer.headers.get('www-authenticate') ?? '').toMatch(/^Bearer error="invalid_token"/);
      }
    });

    it("an API token without the route's scope gets 403 insufficient_scope; with it, through", async () => {
      for (const route of routes) {
        const { scope } = route.rule;
        expectInsufficientScope(await tryRoute(route, tokens.without[scope]), scope, label(route, `every scope but ${scope}`));
        const allowed = await tryRoute(route, tokens.only[scope]);
        expect(allowed.status, `${label(route, scope)}: ${allowed.text}`).not.toBe(401);
        expect(allowed.json['error'], `${label(route, scope)}: ${allowed.text}`).not.toBe('insufficient_scope');
        expect(allowed.headers.get('cache-control'), label(route, scope)).toBe('no-store');
      }
    });

    it('first-party credentials (/api/token/ JWTs) keep the user\'s full rights', async () => {
      for (const route of routes) {
        const answer = await tryRoute(route, tokens.firstParty);
        expect(answer.status, `${label(route, 'a first-party JWT')}: ${answer.text}`).not.toBe(401);
        expect(answer.status, `${label(route, 'a first-party JWT')}: ${answer.text}`).not.toBe(403);
      }
    });

    it('/users/login/ tokens (the built-in first-party client) keep them too', async () => {
      const login = await callApi(fx.server.url, 'POST', '/users/login/', { form: { username: root.username, password: PASSWORD } });
      expect(login.status, login.text).toBe(200);
      const token = String(login.json['access_token']);
      const listed = await api('GET', '/api/users/', token);
      expect(listed.status, listed.text).toBe(200);
      expect((await api('PATCH', `/api/users/${root.id}/`, token, { first_name: 'Root' })).status).toBe(200);
    });
  });

  describe('a client gets only the API scopes staff registered it for', () => {
    it('drops the others before consent, so no token carries them', async () => {
      const made = await makeClient(fx.server.latchkey, { name: 'Profile viewer', apiScopes: ['users:read'] });
      const viewer = await discover(fx.server.issuer, made.client.clientId, made.clientSecret);
      const asked = apiAuthorization(fx.server.latchkey, ['users:read', 'users:write', 'account', 'admin']);
      const { tokens } = await loginAndExchange(viewer, new UserAgent(), { username: bob.username, password: PASSWORD }, asked);
      expect(decodeJwt(tokens.access_token)['scope']).toBe('users:read');
      expect((await api('GET', `/api/users/${bob.id}/`, tokens.access_token)).status).toBe(200);
      expectInsufficientScope(await api('PATCH', `/api/users/${bob.id}/`, tokens.access_token, { first_name: 'x' }), 'users:write', 'PATCH with users:read');
      // Staff take the scope away: the JWT already issued loses it at once, not when it expires.
      await fx.server.latchkey.services.clientService.update(made.client.clientId, { apiScopes: [] });
      expectInsufficientScope(await api('GET', `/api/users/${bob.id}/`, tokens.access_token), 'users:read', 'after staff took users:read away');

      // An app registered for none gets no API scope at all.
      const plain = await makeClient(fx.server.latchkey, { name: 'Plain app' });
      const plainConfig = await discover(fx.server.issuer, plain.client.clientId, plain.clientSecret);
      const plainTokens = (await loginAndExchange(plainConfig, new UserAgent(), { username: bob.username, password: PASSWORD }, asked)).tokens;
      expect(decodeJwt(plainTokens.access_token)['scope']).toBeUndefined();
      expectInsufficientScope(await api('GET', '/auth/me/', plainTokens.access_token), 'users:read', 'an API token with no scope');
    });

    it('the consent page says in words what each API scope allows', async () => {
      const agent = new UserAgent();
      const { url } = await authorizationRequest(printer, apiAuthorization(fx.server.latchkey, [...API_SCOPES], 'openid'));
      let { response, url: at } = await agent.follow(url);
      const login = formOf(await response.text(), '/login');
      const user = await makeUser(fx.server.latchkey);
      const posted = await agent.postForm(new URL(login.action, at), { csrf: login.csrf, username: user.username, password: PASSWORD });
      ({ response, url: at } = await agent.follow(new URL(posted.headers.get('location') ?? '', at)));
      const consent = await response.text();
      for (const words of ['Read your Latchkey account details', 'Change or delete your Latchkey account', 'Manage your password, two-factor authentication', 'Administer Latchkey as you']) {
        expect(consent).toContain(words);
      }
    });

    it('staff grant API scopes over REST; dynamic registration cannot', async () => {
      const staffJwt = String((await api('POST', '/api/token/', undefined, { username: root.username, password: PASSWORD })).json['access']);
      const created = await api('POST', '/api/clients/', staffJwt, { client_name: 'Reporting', redirect_uris: ['https://reports.example.com/cb'], api_scopes: ['users:read'] });
      expect(created.status, created.text).toBe(201);
      expect(created.json['api_scopes']).toEqual(['users:read']);
      const bad = await api('POST', '/api/clients/', staffJwt, { client_name: 'Bad', redirect_uris: ['https://bad.example.com/cb'], api_scopes: ['everything'] });
      expect(bad.status, bad.text).toBe(400);
      expect(bad.json['error']).toBe('invalid_client_metadata');

      const iat = await new fx.server.latchkey.host.provider.InitialAccessToken({ policies: [REGISTRATION_POLICY] }).save();
      const registered = await api('POST', `${fx.server.issuer}/reg`, iat, {
        client_name: 'Self-made',
        redirect_uris: ['https://self.example.com/cb'],
        api_scopes: 'users:read users:write',
      });
      expect(registered.status, registered.text).toBe(400);
      expect(registered.json['error']).toBe('invalid_client_metadata');
      expect(String(registered.json['error_description'])).toMatch(/staff/);
    });
  });
});
