import * as oidc from 'openid-client';
import { beforeAll, expect, it } from 'vitest';
import { UserAgent } from '../helpers/browserless.js';
import { authorizationRequest, discover, loginAndExchange, makeClient, makeUser, PASSWORD, POST_LOGOUT_URI, REDIRECT_URI } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { secretDigest } from '../../src/oidc/stored-ids.js';
import { OPAQUE_TOKEN } from '../helpers/shapes.js';

/** Checklist items 7, 10, 11 and 15 not covered elsewhere: entropy, max_age, logout redirects, session ids. */
describeOnBackends('session and token properties (%s)', (fx) => {
  let config: oidc.Configuration;
  beforeAll(async () => {
    const made = await makeClient(fx.server.latchkey, { grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'] });
    config = await discover(fx.server.issuer, made.client.clientId, made.clientSecret);
  });

  const sessionCookie = async (agent: UserAgent) =>
    (await agent.jar.getCookies(`${fx.server.url}/o/auth`)).find((c) => c.key === '_session')?.value;

  it('gives tokens, codes and secrets at least 128 bits of randomness', async () => {
    const user = await makeUser(fx.server.latchkey);
    const { tokens, callbackUrl } = await loginAndExchange(config, new UserAgent(), { username: user.username, password: PASSWORD });
    const secret = (await makeClient(fx.server.latchkey)).clientSecret!;
    // base64url carries 6 bits a character: 22 characters are 132 bits.
    for (const value of [tokens.access_token, tokens.refresh_token!, callbackUrl.searchParams.get('code')!, secret]) {
      expect(value).toMatch(/^[A-Za-z0-9_-]{22,}$/);
    }
    const many = new Set(await Promise.all(Array.from({ length: 20 }, async () => (await oidc.clientCredentialsGrant(config)).access_token)));
    expect(many.size).toBe(20);
  });

  it('issues a new session id at login (no session fixation)', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = new UserAgent();
    // A first visit that ends at the login page may already carry a session cookie.
    const { url } = await authorizationRequest(config);
    await agent.follow(url, (u) => u.href.startsWith(REDIRECT_URI));
    const before = await sessionCookie(agent);
    await loginAndExchange(config, agent, { username: user.username, password: PASSWORD });
    const after = await sessionCookie(agent);
    expect(after).toMatch(OPAQUE_TOKEN);
    expect(after).not.toBe(before);
    // The id the browser held before login names no session with an account.
    if (before) {
      const stale = await fx.server.latchkey.storage.knex('oidc_payloads').where({ model: 'Session', id: secretDigest(before) }).first();
      expect(stale?.account_id ?? null).toBeNull();
    }
  });

  it('forces a new login when max_age has passed, and records auth_time', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = new UserAgent();
    // max_age makes the ID token carry auth_time (OIDC Core 3.1.2.1).
    const first = await loginAndExchange(config, agent, { username: user.username, password: PASSWORD }, { max_age: '3600' });
    const authTime = first.tokens.claims()!.auth_time!;
    expect(typeof authTime).toBe('number');
    await new Promise((r) => setTimeout(r, 2100));
    const { url } = await authorizationRequest(config, { max_age: '1' });
    const { url: landed, response } = await agent.follow(url, (u) => u.href.startsWith(REDIRECT_URI));
    expect(landed.pathname).toMatch(/^\/interaction\//);
    expect(await response.text()).toContain('name="password"');
    // With prompt=none the same request is refused instead of showing a page.
    const silent = await authorizationRequest(config, { max_age: '1', prompt: 'none' });
    const answer = await agent.fetch(silent.url);
    const location = new URL(answer.headers.get('location')!, fx.server.url);
    expect(location.href.startsWith(REDIRECT_URI)).toBe(true);
    expect(location.searchParams.get('error')).toBe('login_required');
  });

  it('never redirects after logout to an unregistered post_logout_redirect_uri', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = new UserAgent();
    const { tokens } = await loginAndExchange(config, agent, { username: user.username, password: PASSWORD });
    for (const target of ['https://evil.example/', `${POST_LOGOUT_URI}/../evil`, `${POST_LOGOUT_URI}?next=https://evil.example`, 'http://127.0.0.1:8787/signed-out.evil']) {
      const url = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: target });
      const response = await agent.fetch(url);
      expect(response.status, target).toBe(400);
      expect(response.headers.get('location')).toBeNull();
    }
  });
});
