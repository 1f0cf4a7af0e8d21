import * as oidc from 'openid-client';
import { beforeAll, expect, it } from 'vitest';
import { formOf, UserAgent } from '../helpers/browserless.js';
import { authorize, discover, loginAndExchange, makeClient, makeUser, PASSWORD, POST_LOGOUT_URI } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { ACCESS_TOKEN, OPAQUE_TOKEN } from '../helpers/shapes.js';

describeOnBackends('OIDC flows through openid-client (%s)', (fx) => {
  let config: oidc.Configuration;
  let clientId: string;
  let clientSecret: string;

  beforeAll(async () => {
    const made = await makeClient(fx.server.latchkey, { grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'] });
    clientId = made.client.clientId;
    clientSecret = made.clientSecret ?? '';
    config = await discover(fx.server.issuer, clientId, clientSecret);
  });

  it('publishes discovery with the issuer under /o', () => {
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(`${fx.server.url}/o`);
    expect(meta.authorization_endpoint).toBe(`${fx.server.url}/o/auth`);
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
    // 'none' (a login session, no token) serves the admin pages; no implicit or hybrid types.
    expect(meta.response_types_supported).toEqual(['code', 'none']);
    expect(meta.token_endpoint_auth_methods_supported).not.toContain('client_secret_jwt');
  });

  it('signs in through the login and consent pages and validates the ID token', async () => {
    const user = await makeUser(fx.server.latchkey);
    const { tokens } = await loginAndExchange(config, new UserAgent(), { username: user.username, password: PASSWORD });
    const claims = tokens.claims();
    expect(claims?.sub).toBe(String(user.id));
    expect(claims?.iss).toBe(fx.server.issuer);
    expect(tokens.access_token).toMatch(ACCESS_TOKEN);
    expect(tokens.refresh_token).toMatch(OPAQUE_TOKEN);

    const info = await oidc.fetchUserInfo(config, tokens.access_token, String(user.id));
    expect(info).toMatchObject({
      sub: String(user.id),
      preferred_username: user.username,
      name: 'Ada Lovelace',
      given_name: 'Ada',
      family_name: 'Lovelace',
      email: user.email,
      email_verified: true,
    });
    expect(typeof info['updated_at']).toBe('number');
  });

  it('releases claims per scope: openid alone gives only sub', async () => {
    const user = await makeUser(fx.server.latchkey);
    const { tokens } = await loginAndExchange(config, new UserAgent(), { username: user.username, password: PASSWORD }, { scope: 'openid' });
    const info = await oidc.fetchUserInfo(config, tokens.access_token, String(user.id));
    expect(Object.keys(info).sort()).toEqual(['sub']);
  });

  it('honours the claims parameter for the ID token', async () => {
    const user = await makeUser(fx.server.latchkey);
    const { tokens } = await loginAndExchange(config, new UserAgent(), { username: user.username, password: PASSWORD }, {
      scope: 'openid',
      claims: JSON.stringify({ id_token: { email: { essential: true } } }),
    });
    expect(tokens.claims()?.['email']).toBe(user.email);
    expect(tokens.claims()?.['preferred_username']).toBeUndefined();
  });

  it('skips consent the second time the same client asks for the same scopes', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = new UserAgent();
    await loginAndExchange(config, agent, { username: user.username, password: PASSWORD });
    // Same browser session: no login page, no consent page, straight to the callback.
    const again = await authorize(config, agent, null, {}, { consent: 'skip' });
    expect(again.callbackUrl.searchParams.get('code')).toMatch(OPAQUE_TOKEN);
  });

  it('reports a denied consent to the client as access_denied', async () => {
    const user = await makeUser(fx.server.latchkey);
    const result = await authorize(config, new UserAgent(), { username: user.username, password: PASSWORD }, {}, { consent: 'deny' });
    expect(result.callbackUrl.searchParams.get('error')).toBe('access_denied');
    expect(result.callbackUrl.searchParams.get('code')).toBeNull();
  });

  it('rotates refresh tokens and revokes the grant when a used one is replayed', async () => {
    const user = await makeUser(fx.server.latchkey);
    const { tokens } = await loginAndExchange(config, new UserAgent(), { username: user.username, password: PASSWORD });
    const first = tokens.refresh_token!;
    const rotated = await oidc.refreshTokenGrant(config, first);
    expect(rotated.refresh_token).toMatch(OPAQUE_TOKEN);
    expect(rotated.refresh_token).not.toBe(first);
    expect((await oidc.fetchUserInfo(config, rotated.access_token, String(user.id))).sub).toBe(String(user.id));

    // Replaying the used token is treated as theft: refused, and everything of the grant dies.
    await expect(oidc.refreshTokenGrant(config, first)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(config, rotated.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oidc.tokenIntrospection(config, rotated.access_token)).active).toBe(false);
    await expect(oidc.fetchUserInfo(config, rotated.access_token, String(user.id))).rejects.toThrow();
  });

  it('lets exactly one of two concurrent refreshes win; the loser revokes the grant', async () => {
    const user = await makeUser(fx.server.latchkey);
    const { tokens } = await loginAndExchange(config, new UserAgent(), { username: user.username, password: PASSWORD });
    const results = await Promise.allSettled([
      oidc.refreshTokenGrant(config, tokens.refresh_token!),
      oidc.refreshTokenGrant(config, tokens.refresh_token!),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]?.reason).toMatchObject({ error: 'invalid_grant' });
    // Defined behaviour: a concurrent reuse is a reuse, so the winner's tokens die with the grant.
    const winner = (won[0] as PromiseFulfilledResult<oidc.TokenEndpointResponse>).value;
    await expect(oidc.refreshTokenGrant(config, winner.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('issues client_credentials tokens that introspect as active for their client', async () => {
    const tokens = await oidc.clientCredentialsGrant(config, { scope: '' });
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    const introspection = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(introspection).toMatchObject({ active: true, client_id: clientId });
    expect(introspection.sub).toBeUndefined();
  });

  it('introspects user tokens: active with sub and scope, inactive for garbage', async () => {
    const user = await makeUser(fx.server.latchkey);
    const { tokens } = await loginAndExchange(config, new UserAgent(), { username: user.username, password: PASSWORD });
    const active = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(active).toMatchObject({ active: true, sub: String(user.id), client_id: clientId, iss: fx.server.issuer });
    expect(String(active.scope).split(' ')).toEqual(expect.arrayContaining(['openid', 'profile', 'email']));
    expect(await oidc.tokenIntrospection(config, 'not-a-token')).toEqual({ active: false });
  });

  it('revokes access and refresh tokens', async () => {
    const user = await makeUser(fx.server.latchkey);
    const { tokens } = await loginAndExchange(config, new UserAgent(), { username: user.username, password: PASSWORD });
    await oidc.tokenRevocation(config, tokens.access_token);
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(false);
    await expect(oidc.fetchUserInfo(config, tokens.access_token, String(user.id))).rejects.toThrow();

    await oidc.tokenRevocation(config, tokens.refresh_token!);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('signs out through RP-initiated logout and ends the session on the server', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = new UserAgent();
    const { tokens } = await loginAndExchange(config, agent, { username: user.username, password: PASSWORD });
    const endUrl = oidc.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: POST_LOGOUT_URI,
      state: 'bye',
    });
    const confirm = await agent.fetch(endUrl);
    expect(confirm.status).toBe(200);
    const html = await confirm.text();
    const action = /<form id="op.logoutForm" method="post" action="([^"]+)"/.exec(html)?.[1];
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    expect(action && xsrf).toBeTruthy();
    const done = await agent.postForm(new URL(action!, endUrl), { xsrf: xsrf!, logout: 'yes' });
    expect(done.status).toBe(303);
    const back = new URL(done.headers.get('location')!, endUrl);
    expect(back.href.startsWith(POST_LOGOUT_URI)).toBe(true);
    expect(back.searchParams.get('state')).toBe('bye');

    // No session row left for this user, and a new authorization asks for the login again.
    const sessions = await fx.server.latchkey.storage.knex('oidc_payloads').where({ model: 'Session', account_id: String(user.id) });
    expect(sessions).toHaveLength(0);
    const again = await agent.follow(
      oidc.buildAuthorizationUrl(config, { redirect_uri: 'http://127.0.0.1:8787/callback', scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }),
      (u) => u.href.startsWith('http://127.0.0.1:8787/'),
    );
    expect(again.url.href).toContain('/interaction/');
    expect(await again.response.text()).toContain('name="password"');
    // Tokens issued without offline_access end with the session.
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('keeps offline_access refresh tokens working after the person signs out; others end with the session', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = new UserAgent();
    const login = { username: user.username, password: PASSWORD };
    const offline = await loginAndExchange(config, agent, login, { scope: 'openid offline_access', prompt: 'consent' });
    expect(offline.tokens.scope?.split(' ')).toContain('offline_access');
    const online = await loginAndExchange(config, agent, login, { scope: 'openid' });

    const endUrl = oidc.buildEndSessionUrl(config, { id_token_hint: online.tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT_URI });
    const html = await (await agent.fetch(endUrl)).text();
    const action = /<form id="op.logoutForm" method="post" action="([^"]+)"/.exec(html)?.[1];
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    expect((await agent.postForm(new URL(action!, endUrl), { xsrf: xsrf!, logout: 'yes' })).status).toBe(303);

    await expect(oidc.refreshTokenGrant(config, online.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const refreshed = await oidc.refreshTokenGrant(config, offline.tokens.refresh_token!);
    expect(refreshed.access_token).toMatch(ACCESS_TOKEN);
  });

  it('gives a person the same sub at every client (subject type public)', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = new UserAgent();
    const other = await makeClient(fx.server.latchkey, { name: 'Second RP' });
    const otherConfig = await discover(fx.server.issuer, other.client.clientId, other.clientSecret);
    const a = await loginAndExchange(config, agent, { username: user.username, password: PASSWORD });
    const b = await loginAndExchange(otherConfig, agent, { username: user.username, password: PASSWORD });
    expect(a.tokens.claims()?.sub).toBe(String(user.id));
    expect(b.tokens.claims()?.sub).toBe(String(user.id));
    expect(config.serverMetadata().subject_types_supported).toEqual(['public']);
  });

  it('gives a deactivated user no new tokens, even with a live login session', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = new UserAgent();
    await loginAndExchange(config, agent, { username: user.username, password: PASSWORD });
    await fx.server.latchkey.storage.users.setActive(user.id, false);

    const codeVerifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: 'http://127.0.0.1:8787/callback',
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    });
    // The session's account is gone: the person is asked to sign in again...
    const { url: landed, response } = await agent.follow(url, (u) => u.href.startsWith('http://127.0.0.1:8787/'));
    expect(landed.pathname).toMatch(/^\/interaction\//);
    const form = formOf(await response.text(), '/login');
    // ...and the right password no longer works.
    const posted = await agent.postForm(new URL(form.action, landed), { csrf: form.csrf, username: user.username, password: PASSWORD });
    expect(posted.status).toBe(401);
    expect(await posted.text()).toContain('Invalid username or password.');
  });
});

