import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD } from '../helpers/rp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { describeOnBackends, type ApiPair } from '../helpers/fixture.js';
import { useUsersApi, type Json, type UserJson, NEW_PASSWORD, ATTACKER_PASSWORD, asUser, fieldsOf } from '../helpers/users-api.js';

/**
 * The users REST API: password changes and the revocation they cause, deletion and deactivation, superuser accounts, closed registration.
 */
describeOnBackends('users REST API over HTTP (%s)', (fx) => {
  const ctx = useUsersApi(fx);
  const { api, fixtureUser, oauthLogin, expectRefreshRefused, expectInvalidToken, unique, row, tokenAnswer, apiLogin, refreshAnswer, userinfo } = ctx;

  // ------------------------------------------------------------------ passwords and revocation

  describe('password changes', () => {
    it('changing one\'s own password needs the right current_password, then revokes every earlier token', async () => {
      const target = await fixtureUser();
      const pair = await apiLogin(target.username);
      const spare = await apiLogin(target.username);
      const oauth = await oauthLogin(target.username);
      const before = await row(target.id);

      const missing = await api('PATCH', `/api/users/${target.id}/`, { token: pair.access, json: { password: NEW_PASSWORD } });
      expect(missing.status, missing.text).toBe(400);
      expect(Object.keys(fieldsOf(missing))).toEqual(['current_password']);

      const wrong = await api('PATCH', `/api/users/${target.id}/`, {
        token: pair.access,
        json: { password: NEW_PASSWORD, current_password: 'not the current one' },
      });
      expect(wrong.status, wrong.text).toBe(400);
      expect(Object.keys(fieldsOf(wrong))).toEqual(['current_password']);

      const alone = await api('PATCH', `/api/users/${target.id}/`, { token: pair.access, json: { current_password: PASSWORD } });
      expect(alone.status, alone.text).toBe(400);
      expect(Object.keys(fieldsOf(alone))).toEqual(['current_password']);

      expect(await row(target.id)).toEqual(before);
      // Nothing was revoked by the refused attempts.
      expect((await userinfo(oauth.access_token)).status).toBe(200);

      const right = await api('PATCH', `/api/users/${target.id}/`, {
        token: pair.access,
        json: { password: NEW_PASSWORD, current_password: PASSWORD },
      });
      expect(right.status, right.text).toBe(200);
      expect(asUser(right).id).toBe(target.id);

      expect((await tokenAnswer(target.username, PASSWORD)).status).toBe(401);
      const fresh = await apiLogin(target.username, NEW_PASSWORD);
      expect(asUser(await api('GET', '/auth/me/', { token: fresh.access })).id).toBe(target.id);

      // Earlier API refresh tokens and every OAuth token are gone.
      for (const refresh of [pair.refresh, spare.refresh]) expectRefreshRefused(await refreshAnswer(refresh));
      expect((await refreshAnswer(fresh.refresh)).status).toBe(200);
      expect((await userinfo(oauth.access_token)).status).toBe(401);
      expectInvalidToken(await api('GET', '/auth/me/', { token: oauth.access_token }));
      const oauthRefresh = await api('POST', `${fx.server.issuer}/token`, {
        form: { grant_type: 'refresh_token', refresh_token: oauth.refresh_token, client_id: 'latchkey-first-party' },
      });
      expect(oauthRefresh.status, oauthRefresh.text).toBe(400);
      expect(oauthRefresh.json['error']).toBe('invalid_grant');
    });

    it('changing the password with an OAuth token works the same way and revokes that token', async () => {
      const target = await fixtureUser();
      const oauth = await oauthLogin(target.username);
      const answer = await api('PATCH', `/api/users/${target.id}/`, {
        token: oauth.access_token,
        json: { password: NEW_PASSWORD, current_password: PASSWORD },
      });
      expect(answer.status, answer.text).toBe(200);
      expectInvalidToken(await api('GET', '/auth/me/', { token: oauth.access_token }));
      await apiLogin(target.username, NEW_PASSWORD);
    });

    it('staff reset another user\'s password without current_password, which revokes that user\'s tokens', async () => {
      const target = await fixtureUser();
      const pair = await apiLogin(target.username);
      const oauth = await oauthLogin(target.username);
      const answer = await api('PATCH', `/api/users/${target.id}/`, { token: ctx.staffToken, json: { password: NEW_PASSWORD } });
      expect(answer.status, answer.text).toBe(200);
      expect((await tokenAnswer(target.username, PASSWORD)).status).toBe(401);
      await apiLogin(target.username, NEW_PASSWORD);
      expectRefreshRefused(await refreshAnswer(pair.refresh));
      expect((await userinfo(oauth.access_token)).status).toBe(401);
      expectInvalidToken(await api('GET', '/auth/me/', { token: oauth.access_token }));
      // The staff member's own session is untouched.
      expect((await api('GET', '/auth/me/', { token: ctx.staffToken })).status).toBe(200);
    });

    it('staff changing their own password still need current_password', async () => {
      const self = await fx.server.latchkey.storage.users.create({ username: unique('staffself'), email: null, passwordHash: ctx.passwordHash, isStaff: true });
      const { access } = await apiLogin(self.username);
      const missing = await api('PATCH', `/api/users/${self.id}/`, { token: access, json: { password: NEW_PASSWORD } });
      expect(missing.status, missing.text).toBe(400);
      expect(Object.keys(fieldsOf(missing))).toEqual(['current_password']);
      expect((await row(self.id))?.passwordHash).toBe(ctx.passwordHash);
    });
  });

  describe('deletion and deactivation', () => {
    it('DELETE answers 204 and kills the user\'s OAuth and API tokens', async () => {
      const target = await fixtureUser();
      const pair = await apiLogin(target.username);
      const oauth = await oauthLogin(target.username);
      expect((await userinfo(oauth.access_token)).status).toBe(200);
      expect((await api('GET', '/auth/me/', { token: oauth.access_token })).status).toBe(200);

      const deleted = await api('DELETE', `/api/users/${target.id}/`, { token: pair.access, json: { current_password: PASSWORD } });
      expect(deleted.status, deleted.text).toBe(204);
      expect(deleted.text).toBe('');
      expect(await row(target.id)).toBeUndefined();
      const oidcRows = await fx.server.latchkey.storage.knex('oidc_payloads').where({ account_id: String(target.id) }).count<{ n: number }[]>({ n: '*' });
      expect(Number(oidcRows[0]?.n)).toBe(0);

      expect((await userinfo(oauth.access_token)).status).toBe(401);
      expectInvalidToken(await api('GET', '/auth/me/', { token: oauth.access_token }));
      expectInvalidToken(await api('GET', '/auth/me/', { token: pair.access }));
      expectRefreshRefused(await refreshAnswer(pair.refresh));
      expect((await tokenAnswer(target.username, PASSWORD)).status).toBe(401);
      expect((await api('GET', `/api/users/${target.id}/`, { token: ctx.staffToken })).status).toBe(404);
      expect((await api('DELETE', `/api/users/${target.id}/`, { token: ctx.staffToken })).status).toBe(404);
    });

    it('staff deactivating a user (PATCH is_active false) stops every token of theirs', async () => {
      const target = await fixtureUser();
      const pair = await apiLogin(target.username);
      const oauth = await oauthLogin(target.username);
      const answer = await api('PATCH', `/api/users/${target.id}/`, { token: ctx.staffToken, json: { is_active: false } });
      expect(answer.status, answer.text).toBe(200);
      expect(asUser(answer).is_active).toBe(false);

      expectInvalidToken(await api('GET', '/auth/me/', { token: pair.access }));
      expectInvalidToken(await api('GET', '/auth/me/', { token: oauth.access_token }));
      expect((await userinfo(oauth.access_token)).status).toBe(401);
      expect((await tokenAnswer(target.username, PASSWORD)).status).toBe(401);
      expectRefreshRefused(await refreshAnswer(pair.refresh));
      expect((await api('POST', '/users/login/', { form: { username: target.username, password: PASSWORD } })).status).toBe(400);

      // Reactivated, they sign in again, but the old tokens stay dead.
      const back = await api('PATCH', `/api/users/${target.id}/`, { token: ctx.staffToken, json: { is_active: true } });
      expect(back.status, back.text).toBe(200);
      const again = await apiLogin(target.username);
      expect((await api('GET', '/auth/me/', { token: again.access })).status).toBe(200);
      expectRefreshRefused(await refreshAnswer(pair.refresh));
      expect((await userinfo(oauth.access_token)).status).toBe(401);
    });

    it('a deactivated staff member loses staff access at once', async () => {
      const member = await fx.server.latchkey.storage.users.create({ username: unique('exstaff'), email: null, passwordHash: ctx.passwordHash, isStaff: true });
      const { access } = await apiLogin(member.username);
      expect((await api('GET', '/api/users/', { token: access })).status).toBe(200);
      expect((await api('PATCH', `/api/users/${member.id}/`, { token: ctx.superToken, json: { is_active: false } })).status).toBe(200);
      expectInvalidToken(await api('GET', '/api/users/', { token: access }));
      expectInvalidToken(await api('POST', '/api/users/', { token: access, json: { username: unique('x'), password: PASSWORD, is_staff: true } }));
    });
  });

  // ------------------------------------------------------------------ closed registration

  describe('superuser accounts', () => {
    // Staff could otherwise reset a superuser's password (no current_password needed for
    // others) and log in as them, side-stepping "is_superuser: only superusers".
    it('only a superuser may change, deactivate or delete another superuser', async () => {
      const root = await fixtureUser({ isStaff: true, isSuperuser: true });
      const before = await row(root.id);
      for (const [method, json] of [
        ['PATCH', { password: ATTACKER_PASSWORD }],
        ['PATCH', { is_active: false }],
        ['PATCH', { first_name: 'Owned' }],
        ['PUT', { username: root.username, email: root.email }],
        ['DELETE', undefined],
      ] as Array<[string, Json | undefined]>) {
        const answer = await api(method, `/api/users/${root.id}/`, { token: ctx.staffToken, ...(json ? { json } : {}) });
        expect(answer.status, `${method} ${JSON.stringify(json)}: ${answer.text}`).toBe(403);
        expect(answer.json['error']).toBe('permission_denied');
      }
      expect(await row(root.id)).toEqual(before);
      expect((await tokenAnswer(root.username, ATTACKER_PASSWORD)).status).toBe(401);

      const renamed = await api('PATCH', `/api/users/${root.id}/`, { token: ctx.superToken, json: { first_name: 'Trusted' } });
      expect(renamed.status, renamed.text).toBe(200);
      expect((await api('DELETE', `/api/users/${root.id}/`, { token: ctx.superToken })).status).toBe(204);
    });
  });

  describe('with ALLOW_REGISTRATION=false', () => {
    let closed: TestServer;
    let closedStaffToken: string;

    beforeAll(async () => {
      closed = await startTestServer(fx.backend, { ALLOW_REGISTRATION: 'false' });
      const member = await closed.latchkey.storage.users.create({
        username: 'closedstaff',
        email: null,
        passwordHash: await closed.latchkey.services.hasher.hash(PASSWORD),
        isStaff: true,
      });
      const answer = await fetch(`${closed.url}/api/token/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: member.username, password: PASSWORD }),
      });
      expect(answer.status).toBe(200);
      closedStaffToken = ((await answer.json()) as ApiPair).access;
    });
    afterAll(async () => closed?.stop());

    const register = (token?: string) =>
      fetch(`${closed.url}/api/users/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ username: unique('closed'), password: PASSWORD, email: `${unique('closed')}@example.com` }),
      });

    it('refuses anonymous registration with 403 and creates nobody', async () => {
      const before = await closed.latchkey.storage.users.count();
      const answer = await register();
      expect(answer.status).toBe(403);
      expect(((await answer.json()) as Json)['error']).toBe('permission_denied');
      expect(await closed.latchkey.storage.users.count()).toBe(before);
    });

    it('refuses a plain user too', async () => {
      const plain = await closed.latchkey.storage.users.create({
        username: unique('plain'),
        email: null,
        passwordHash: await closed.latchkey.services.hasher.hash(PASSWORD),
      });
      const login = await fetch(`${closed.url}/api/token/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: plain.username, password: PASSWORD }),
      });
      const { access } = (await login.json()) as ApiPair;
      expect((await register(access)).status).toBe(403);
    });

    it('lets staff create users (201)', async () => {
      const answer = await register(closedStaffToken);
      expect(answer.status).toBe(201);
      const user = (await answer.json()) as UserJson;
      expect(await closed.latchkey.storage.users.findById(user.id)).toMatchObject({ id: user.id });
    });
  });
});
