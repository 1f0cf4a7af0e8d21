import * as oidc from 'openid-client';
import { beforeAll, expect, it } from 'vitest';
import type { User } from '../../src/storage/users.js';
import { UserAgent } from '../helpers/browserless.js';
import { type Answer } from '../helpers/http.js';
import { apiAuthorization, apiResourceOf, discover, loginAndExchange, makeClient, makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { ACCESS_TOKEN } from '../helpers/shapes.js';

const NEW_PASSWORD = 'another long passphrase';

// Three wrong current passwords lock the account, as three wrong logins would.
describeOnBackends('/api/me/: password, connected applications and sessions over REST (%s)', { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3' }, (fx) => {
  let mail: oidc.Configuration;
  let calendar: oidc.Configuration;
  let service: oidc.Configuration;

  beforeAll(async () => {
    // Apps registered for the API scopes these routes need (a userinfo token gets nowhere here).
    const a = await makeClient(fx.server.latchkey, { name: 'Mail', apiScopes: ['account', 'users:read'] });
    const b = await makeClient(fx.server.latchkey, { name: 'Calendar', apiScopes: ['account', 'users:read'] });
    const c = await makeClient(fx.server.latchkey, { name: 'Batch job', grantTypes: ['client_credentials'], redirectUris: [], apiScopes: ['account'] });
    mail = await discover(fx.server.issuer, a.client.clientId, a.clientSecret);
    calendar = await discover(fx.server.issuer, b.client.clientId, b.clientSecret);
    service = await discover(fx.server.issuer, c.client.clientId, c.clientSecret);
  });

  const call = fx.bearer;

  /** One person signed in twice: Mail in one browser, Calendar in another. */
  async function twoBrowsers(user: User) {
    const login = { username: user.username, password: PASSWORD };
    const laptop = new UserAgent();
    const phone = new UserAgent();
    const params = apiAuthorization(fx.server.latchkey, ['account', 'users:read']);
    const inMail = await loginAndExchange(mail, laptop, login, params);
    const inCalendar = await loginAndExchange(calendar, phone, login, params);
    return { laptop, phone, mailTokens: inMail.tokens, calendarTokens: inCalendar.tokens };
  }

  const results = (answer: Answer) => answer.json['results'] as Array<Record<string, unknown>>;

  it('answers 401 without a token and 403 to a token that acts for no person, on every route', async () => {
    const clientToken = (await oidc.clientCredentialsGrant(service, { resource: apiResourceOf(fx.server.latchkey), scope: 'account' })).access_token;
    const routes: Array<[string, string, unknown?]> = [
      ['GET', '/api/me/grants/'],
      ['DELETE', '/api/me/grants/x/'],
      ['GET', '/api/me/sessions/'],
      ['DELETE', '/api/me/sessions/x/'],
      ['POST', '/api/me/password/', { current_password: PASSWORD, new_password: NEW_PASSWORD }],
    ];
    for (const [method, path, body] of routes) {
      const anonymous = await call(method, path, null, body);
      expect(anonymous.status, `${method} ${path}`).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(anonymous.json['error']).toBe('invalid_token');
      const forClient = await call(method, path, clientToken, body);
      expect(forClient.status, `${method} ${path}`).toBe(403);
      expect(forClient.json['error']).toBe('permission_denied');
    }
  });

  it('lists the applications the person allowed, and revokes one with its tokens', async () => {
    const user = await makeUser(fx.server.latchkey);
    const { mailTokens, calendarTokens } = await twoBrowsers(user);
    const listed = await call('GET', '/api/me/grants', mailTokens.access_token);
    expect(listed.status, listed.text).toBe(200);
    const apps = results(listed);
    expect(apps.map((a) => a['client_name']).sort()).toEqual(['Calendar', 'Mail']);
    for (const app of apps) expect(app['scopes']).toEqual(['openid', 'profile', 'email']);
    const calendarGrant = apps.find((a) => a['client_name'] === 'Calendar')!;

    const revoked = await call('DELETE', `/api/me/grants/${String(calendarGrant['id'])}/`, mailTokens.access_token);
    expect(revoked.status, revoked.text).toBe(204);
    // Its API JWT dies with the grant at once, not when it expires.
    const calendarAfter = await call('GET', '/auth/me/', calendarTokens.access_token);
    expect(calendarAfter.status).toBe(401);
    expect(calendarAfter.json['error']).toBe('invalid_token');
    await expect(oidc.refreshTokenGrant(calendar, calendarTokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    // Mail is untouched.
    expect((await call('GET', '/auth/me/', mailTokens.access_token)).json['id']).toBe(user.id);
    expect(results(await call('GET', '/api/me/grants', mailTokens.access_token)).map((a) => a['client_name'])).toEqual(['Mail']);
    // Revoking it again, or something that never existed: 404.
    expect((await call('DELETE', `/api/me/grants/${String(calendarGrant['id'])}/`, mailTokens.access_token)).status).toBe(404);
    expect((await call('DELETE', '/api/me/grants/no-such-grant/', mailTokens.access_token)).status).toBe(404);
  });

  it("cannot see or revoke another person's grants or sessions (404, nothing changes)", async () => {
    const alice = await makeUser(fx.server.latchkey);
    const mallory = await makeUser(fx.server.latchkey);
    const aliceTokens = (await twoBrowsers(alice)).mailTokens;
    const malloryTokens = (await twoBrowsers(mallory)).mailTokens;
    const aliceGrant = results(await call('GET', '/api/me/grants', aliceTokens.access_token))[0]!;
    const aliceSession = results(await call('GET', '/api/me/sessions', aliceTokens.access_token))[0]!;

    const mine = results(await call('GET', '/api/me/grants', malloryTokens.access_token));
    expect(mine.map((g) => g['id'])).not.toContain(aliceGrant['id']);
    expect((await call('DELETE', `/api/me/grants/${String(aliceGrant['id'])}/`, malloryTokens.access_token)).status).toBe(404);
    expect((await call('DELETE', `/api/me/sessions/${String(aliceSession['id'])}/`, malloryTokens.access_token)).status).toBe(404);
    expect(results(await call('GET', '/api/me/grants', aliceTokens.access_token))).toHaveLength(2);
    expect(results(await call('GET', '/api/me/sessions', aliceTokens.access_token))).toHaveLength(2);
  });

  it('lists login sessions, marks the current one, and signs another one out', async () => {
    const user = await makeUser(fx.server.latchkey);
    const { phone, mailTokens, calendarTokens } = await twoBrowsers(user);
    const listed = await call('GET', '/api/me/sessions/', mailTokens.access_token);
    expect(listed.status, listed.text).toBe(200);
    const sessions = results(listed);
    expect(sessions).toHaveLength(2);
    const current = sessions.filter((s) => s['current'] === true);
    expect(current).toHaveLength(1);
    expect(current[0]!['applications']).toEqual([expect.objectContaining({ client_name: 'Mail' })]);
    expect(current[0]!['methods']).toEqual(['pwd']);
    // Session ids are not the cookie values that would let someone take a session over.
    const cookies = (await phone.jar.getCookies(fx.server.url)).map((c) => c.value);
    for (const session of sessions) expect(cookies).not.toContain(session['id']);

    const other = sessions.find((s) => s['current'] === false)!;
    expect(other['applications']).toEqual([expect.objectContaining({ client_name: 'Calendar' })]);
    expect((await call('DELETE', `/api/me/sessions/${String(other['id'])}`, mailTokens.access_token)).status).toBe(204);

    // The phone's tokens (no offline_access), its API JWT too, died with its session, and the phone must sign in again.
    const calendarAfter = await call('GET', '/auth/me/', calendarTokens.access_token);
    expect(calendarAfter.status).toBe(401);
    expect(calendarAfter.json['error']).toBe('invalid_token');
    const again = await phone.follow(
      oidc.buildAuthorizationUrl(calendar, { redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }),
      (u) => u.href.startsWith(REDIRECT_URI),
    );
    expect(await again.response.text()).toContain('name="password"');
    expect(results(await call('GET', '/api/me/sessions/', mailTokens.access_token)).map((s) => s['id'])).toEqual([current[0]!['id']]);
  });

  it('changes the password: the caller keeps working, every other session and token ends', async () => {
    const user = await makeUser(fx.server.latchkey);
    const { mailTokens, calendarTokens } = await twoBrowsers(user);
    const apiPair = await call('POST', '/api/token/', null, { username: user.username, password: PASSWORD });
    expect(apiPair.status).toBe(200);

    const changed = await call('POST', '/api/me/password/', mailTokens.access_token, { current_password: PASSWORD, new_password: NEW_PASSWORD });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.json['username']).toBe(user.username);
    expect(changed.text).not.toMatch(/password/i);

    // The old password is gone, the new one works.
    expect((await call('POST', '/api/token/', null, { username: user.username, password: PASSWORD })).status).toBe(401);
    expect((await call('POST', '/api/token/', null, { username: user.username, password: NEW_PASSWORD })).status).toBe(200);
    // Mail, which asked, keeps its grant and session; Calendar's tokens and the API refresh token are dead.
    expect((await call('GET', '/auth/me/', mailTokens.access_token)).status).toBe(200);
    expect((await oidc.refreshTokenGrant(mail, mailTokens.refresh_token!)).access_token).toMatch(ACCESS_TOKEN);
    await expect(oidc.refreshTokenGrant(calendar, calendarTokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await call('POST', '/api/token/refresh/', null, { refresh: apiPair.json['refresh'] })).status).toBe(401);
    const sessions = results(await call('GET', '/api/me/sessions/', mailTokens.access_token));
    expect(sessions.map((s) => s['current'])).toEqual([true]);
    const audit = await fx.server.latchkey.services.audit.list({ offset: 0, limit: 100, event: 'user.password_changed' });
    expect(audit.events.some((e) => e.target_id === String(user.id) && e.actor === user.username)).toBe(true);
  });

  it('refuses bad input with one message per field and changes nothing', async () => {
    const user = await makeUser(fx.server.latchkey);
    const { mailTokens } = await twoBrowsers(user);
    const cases: Array<[unknown, string[]]> = [
      [{}, ['current_password', 'new_password']],
      [{ current_password: PASSWORD }, ['new_password']],
      [{ current_password: PASSWORD, new_password: 'short' }, ['new_password']],
      [{ current_password: PASSWORD, new_password: PASSWORD }, ['new_password']],
      [{ current_password: PASSWORD, new_password: NEW_PASSWORD, is_staff: true }, ['is_staff']],
      [{ current_password: 'not the password', new_password: NEW_PASSWORD }, ['current_password']],
    ];
    for (const [body, fields] of cases) {
      const answer = await call('POST', '/api/me/password/', mailTokens.access_token, body);
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(answer.json['error']).toBe('invalid_request');
      expect(Object.keys(answer.json['fields'] as object).sort()).toEqual(fields);
    }
    expect((await call('POST', '/api/token/', null, { username: user.username, password: PASSWORD })).status).toBe(200);
    expect((await call('GET', '/auth/me/', mailTokens.access_token)).status).toBe(200);
  });

  it('counts wrong current passwords like failed logins: the account locks (429 with Retry-After)', async () => {
    const user = await makeUser(fx.server.latchkey);
    const { mailTokens } = await twoBrowsers(user);
    const wrong = { current_password: 'wrong guess number', new_password: NEW_PASSWORD };
    for (let i = 0; i < 3; i++) expect((await call('POST', '/api/me/password/', mailTokens.access_token, wrong)).status).toBe(400);
    const locked = await call('POST', '/api/me/password/', mailTokens.access_token, { current_password: PASSWORD, new_password: NEW_PASSWORD });
    expect(locked.status, locked.text).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(locked.json['error']).toBe('too_many_requests');
    // The right password was not accepted while locked: it still is the old one.
    expect(await fx.server.latchkey.services.hasher.verify(PASSWORD, (await fx.server.latchkey.storage.users.findById(String(user.id)))!.passwordHash)).toBe(true);
  });
});
