import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { PASSWORD } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { useUsersApi, type Json, NEW_PASSWORD, ATTACKER_PASSWORD, asUser, asPage, fieldsOf } from '../helpers/users-api.js';

/**
 * The users REST API: who may call which route (the permission matrix), bearer authentication, mass assignment and IDOR.
 */
describeOnBackends('users REST API over HTTP (%s)', (fx) => {
  const ctx = useUsersApi(fx);
  const { api, fixtureUser, oauthLogin, expectInvalidToken, clientCredentialsToken, unique, row, tokenAnswer, apiLogin } = ctx;

  // ----------------------------------------------------------------- permission matrix

  type Role = 'anonymous' | 'self' | 'other' | 'staff';
  const ROLES: Role[] = ['anonymous', 'self', 'other', 'staff'];

  interface RouteCase {
    route: string;
    method: string;
    path: (id: number) => string;
    body?: (role: Role) => Json | undefined;
    /** Whether the path names the target user (so a refusal must leave its row alone). */
    targeted: boolean;
    expected: Record<Role, number>;
  }

  const ROUTES: RouteCase[] = [
    {
      route: 'POST /api/users/',
      method: 'POST',
      path: () => '/api/users/',
      body: () => {
        const name = unique('reg');
        return { username: name, password: PASSWORD, email: `${name}@example.com` };
      },
      targeted: false,
      expected: { anonymous: 201, self: 201, other: 201, staff: 201 },
    },
    {
      route: 'GET /api/users/',
      method: 'GET',
      path: () => '/api/users/',
      targeted: false,
      expected: { anonymous: 401, self: 403, other: 403, staff: 200 },
    },
    {
      route: 'GET /api/users/<id>/',
      method: 'GET',
      path: (id) => `/api/users/${id}/`,
      targeted: true,
      expected: { anonymous: 401, self: 200, other: 404, staff: 200 },
    },
    {
      route: 'PUT /api/users/<id>/',
      method: 'PUT',
      path: (id) => `/api/users/${id}/`,
      // PUT drops the absent email: a change of one's own address, which needs the password.
      body: (role) => ({ username: unique('put'), first_name: 'Put', last_name: 'Replaced', ...(role === 'self' ? { current_password: PASSWORD } : {}) }),
      targeted: true,
      expected: { anonymous: 401, self: 200, other: 404, staff: 200 },
    },
    {
      route: 'PATCH /api/users/<id>/',
      method: 'PATCH',
      path: (id) => `/api/users/${id}/`,
      body: () => ({ first_name: 'Patched' }),
      targeted: true,
      expected: { anonymous: 401, self: 200, other: 404, staff: 200 },
    },
    {
      route: 'DELETE /api/users/<id>/',
      method: 'DELETE',
      path: (id) => `/api/users/${id}/`,
      // Deleting one's own account needs the password; staff deleting others do not.
      body: (role) => (role === 'self' ? { current_password: PASSWORD } : undefined),
      targeted: true,
      expected: { anonymous: 401, self: 204, other: 404, staff: 204 },
    },
    {
      route: 'GET /auth/me/',
      method: 'GET',
      path: () => '/auth/me/',
      targeted: false,
      expected: { anonymous: 401, self: 200, other: 200, staff: 200 },
    },
  ];

  const MATRIX = ROUTES.flatMap((c) => ROLES.map((role) => ({ ...c, role, status: c.expected[role] })));

  describe('permission matrix', () => {
    it.each(MATRIX)('$route as $role -> $status', async ({ method, path, body, targeted, role, status, route }) => {
      const target = await fixtureUser();
      const before = await row(target.id);
      const tokens: Record<Role, () => Promise<string | undefined>> = {
        anonymous: async () => undefined,
        self: async () => (await apiLogin(target.username)).access,
        other: async () => ctx.otherToken,
        staff: async () => ctx.staffToken,
      };
      const caller: Record<Role, number | undefined> = { anonymous: undefined, self: target.id, other: ctx.other.id, staff: ctx.staff.id };
      const payload = body?.(role);
      const answer = await api(method, path(target.id), { token: await tokens[role](), json: payload });
      expect(answer.status, answer.text).toBe(status);

      if (status >= 400) {
        expect(answer.json['error']).toEqual(expect.any(String));
        expect(answer.json['error_description']).toEqual(expect.any(String));
        if (status === 401) expectInvalidToken(answer);
        if (status === 403) expect(answer.json['error']).toBe('permission_denied');
        if (targeted) expect(await row(target.id)).toEqual(before);
        if (method === 'POST') expect(await fx.server.latchkey.storage.users.findByLogin(String(payload?.['username']))).toBeUndefined();
        return;
      }
      if (status === 204) {
        expect(answer.text).toBe('');
        expect(await row(target.id)).toBeUndefined();
        return;
      }
      if (status === 201) {
        const created = asUser(answer);
        expect(created.username).toBe(payload?.['username']);
        expect(created.is_staff).toBe(false);
        expect(answer.headers.get('location')).toBe(`/api/users/${created.id}/`);
        expect(await row(created.id)).toMatchObject({ id: created.id });
        return;
      }
      // 200
      if (route === 'GET /api/users/') {
        expect(asPage(answer).count).toBe(await fx.server.latchkey.storage.users.count());
        return;
      }
      const user = asUser(answer);
      expect(user.id).toBe(route === 'GET /auth/me/' ? caller[role] : target.id);
      if (method === 'PUT') expect(user).toMatchObject({ username: payload?.['username'], first_name: 'Put', last_name: 'Replaced', email: '' });
      if (method === 'PATCH') expect(user).toMatchObject({ username: target.username, first_name: 'Patched', last_name: 'Lovelace' });
    });

    it('refuses client_credentials tokens (no user) on every user route with 403', async () => {
      const token = await clientCredentialsToken();
      const target = await fixtureUser();
      const before = await row(target.id);
      for (const [method, path, json] of [
        ['GET', '/auth/me/'],
        ['GET', '/api/users/'],
        ['GET', `/api/users/${target.id}/`],
        ['PUT', `/api/users/${target.id}/`, { username: unique('cc') }],
        ['PATCH', `/api/users/${target.id}/`, { first_name: 'Machine' }],
        ['DELETE', `/api/users/${target.id}/`],
      ] as Array<[string, string, Json?]>) {
        const answer = await api(method, path, { token, json });
        expect(answer.status, `${method} ${path}: ${answer.text}`).toBe(403);
        expect(answer.json['error']).toBe('permission_denied');
      }
      expect(await row(target.id)).toEqual(before);
      // One for no resource reaches no route at all.
      const bare = await clientCredentialsToken({ forApi: false });
      for (const path of ['/auth/me/', '/api/users/', `/api/users/${target.id}/`]) {
        const answer = await api('GET', path, { token: bare });
        expect(answer.status, `${path}: ${answer.text}`).toBe(403);
        expect(answer.json['error']).toBe('insufficient_scope');
      }
      // Registration with such a token is an anonymous registration: no privileges follow.
      const escalate = await api('POST', '/api/users/', { token, json: { username: unique('cc'), password: PASSWORD, is_staff: true } });
      expect(escalate.status, escalate.text).toBe(403);
    });

    it('accepts an OAuth access token from /users/login/ for the user it was issued to', async () => {
      const target = await fixtureUser();
      const { access_token } = await oauthLogin(target.username);
      const me = await api('GET', '/auth/me/', { token: access_token });
      expect(me.status, me.text).toBe(200);
      expect(asUser(me)).toMatchObject({ id: target.id, username: target.username, email: target.email });
      const own = await api('GET', `/api/users/${target.id}/`, { token: access_token });
      expect(own.status).toBe(200);
      // Still a plain user: the list and other users stay out of reach.
      expect((await api('GET', '/api/users/', { token: access_token })).status).toBe(403);
      expect((await api('GET', `/api/users/${ctx.other.id}/`, { token: access_token })).status).toBe(404);
    });
  });

  // ---------------------------------------------------------- authentication failures

  describe('bearer authentication', () => {
    it.each([
      ['garbage', 'Bearer not-a-real-token'],
      ['a JWT-shaped string', 'Bearer aaaa.bbbb.cccc'],
      ['an empty bearer', 'Bearer '],
      ['a Basic header', `Basic ${Buffer.from('someone:password').toString('base64')}`],
    ])('answers 401 with a Bearer invalid_token challenge to %s', async (_what, authorization) => {
      for (const path of ['/auth/me/', '/api/users/', `/api/users/${ctx.other.id}/`]) {
        expectInvalidToken(await api('GET', path, { authorization }));
      }
      expectInvalidToken(await api('PATCH', `/api/users/${ctx.other.id}/`, { authorization, json: { first_name: 'x' } }));
      expectInvalidToken(await api('DELETE', `/api/users/${ctx.other.id}/`, { authorization }));
      expect(await row(ctx.other.id)).toMatchObject({ firstName: 'Ada' });
    });

    it('answers 401 with the challenge when no credentials are sent', async () => {
      const answer = await api('GET', '/auth/me/');
      expectInvalidToken(answer);
    });

    it('refuses expired, foreign-signed and refresh JWTs; accepts a well-formed one (control)', async () => {
      const jwk = fx.server.latchkey.host.keys.jwks.keys.find((k) => k.alg === 'RS256' && !k.key_ops);
      if (!jwk?.kid) throw new Error('no RS256 key');
      const key = await importJWK(jwk, 'RS256');
      const now = Math.floor(Date.now() / 1000);
      const forge = (signingKey: Parameters<SignJWT['sign']>[0], iat: number, exp: number, typ = 'at+jwt') =>
        new SignJWT({ sub: String(ctx.other.id), user_id: ctx.other.id, token_type: 'access', jti: randomBytes(12).toString('base64url') })
          .setProtectedHeader({ alg: 'RS256', typ, kid: jwk.kid! })
          .setIssuer(fx.server.issuer)
          .setAudience(`${fx.server.url}/api`)
          .setIssuedAt(iat)
          .setExpirationTime(exp)
          .sign(signingKey);

      const control = await api('GET', '/auth/me/', { token: await forge(key, now, now + 60) });
      expect(control.status, control.text).toBe(200);
      expect(asUser(control).id).toBe(ctx.other.id);

      const expired = await api('GET', '/auth/me/', { token: await forge(key, now - 3600, now - 1800) });
      expectInvalidToken(expired);
      expect(expired.headers.get('www-authenticate')).toMatch(/expired/i);

      const { privateKey } = await generateKeyPair('RS256', { extractable: true });
      const foreign = await importJWK({ ...(await exportJWK(privateKey)), alg: 'RS256' }, 'RS256');
      expectInvalidToken(await api('GET', '/auth/me/', { token: await forge(foreign, now, now + 60) }));

      const { refresh } = await apiLogin(ctx.other.username);
      expectInvalidToken(await api('GET', '/auth/me/', { token: refresh }));
    });
  });

  // -------------------------------------------------------------------- mass assignment

  /** Fields only staff (privileged) or nobody (read-only) may write, with the values an attacker would send. */
  const PRIVILEGED: Array<[string, () => unknown]> = [
    ['is_staff', () => true],
    ['is_active', () => false],
    ['is_superuser', () => true],
  ];
  const READ_ONLY: Array<[string, () => unknown]> = [
    ['password_hash', () => ctx.attackerHash],
    ['id', () => 424242],
    ['date_joined', () => '2001-01-01T00:00:00.000Z'],
    ['last_login', () => '2001-01-01T00:00:00.000Z'],
    ['updated_at', () => '2001-01-01T00:00:00.000Z'],
    ['email_verified', () => true],
  ];
  const GUARDED = [...PRIVILEGED, ...READ_ONLY];

  describe('mass assignment', () => {
    it.each(GUARDED)('create: anonymous and plain users sending %s get 403 and no user is made', async (field, value) => {
      for (const token of [undefined, ctx.otherToken]) {
        const username = unique('mass');
        const answer = await api('POST', '/api/users/', {
          token,
          json: { username, password: PASSWORD, email: `${username}@example.com`, [field]: value() },
        });
        expect(answer.status, answer.text).toBe(403);
        expect(answer.json['error']).toBe('permission_denied');
        expect(answer.json['error_description']).toContain(field);
        expect(await fx.server.latchkey.storage.users.findByLogin(username)).toBeUndefined();
      }
      if (field === 'id') expect(await row(424242)).toBeUndefined();
    });

    it.each(GUARDED)('update: a user writing their own %s (PATCH or PUT) gets 403 and the row is unchanged', async (field, value) => {
      const target = await fixtureUser({ emailVerified: false });
      const { access } = await apiLogin(target.username);
      const before = await row(target.id);
      for (const [method, json] of [
        ['PATCH', { [field]: value() }],
        // Smuggled next to a legitimate change: nothing of the request applies.
        ['PATCH', { first_name: 'Mallory', [field]: value() }],
        ['PUT', { username: target.username, email: target.email, first_name: 'Ada', last_name: 'Lovelace', [field]: value() }],
      ] as Array<[string, Json]>) {
        const answer = await api(method, `/api/users/${target.id}/`, { token: access, json });
        expect(answer.status, `${method} ${JSON.stringify(json)}: ${answer.text}`).toBe(403);
        expect(answer.json['error']).toBe('permission_denied');
        expect(await row(target.id)).toEqual(before);
      }
      if (field === 'password_hash') {
        expect((await tokenAnswer(target.username, ATTACKER_PASSWORD)).status).toBe(401);
        expect((await tokenAnswer(target.username, PASSWORD)).status).toBe(200);
      }
      // Still themselves, still a plain user.
      const me = await api('GET', '/auth/me/', { token: access });
      expect(asUser(me)).toMatchObject({ id: target.id, is_staff: false, is_superuser: false, is_active: true });
    });

    it.each(READ_ONLY)('staff sending read-only %s get 400 naming the field, on create and update', async (field, value) => {
      const username = unique('ro');
      const created = await api('POST', '/api/users/', { token: ctx.staffToken, json: { username, password: PASSWORD, [field]: value() } });
      expect(created.status, created.text).toBe(400);
      expect(Object.keys(fieldsOf(created))).toEqual([field]);
      expect(await fx.server.latchkey.storage.users.findByLogin(username)).toBeUndefined();

      const target = await fixtureUser({ emailVerified: false });
      const before = await row(target.id);
      for (const method of ['PATCH', 'PUT']) {
        const answer = await api(method, `/api/users/${target.id}/`, {
          token: ctx.staffToken,
          json: { username: target.username, [field]: value() },
        });
        expect(answer.status, answer.text).toBe(400);
        expect(fieldsOf(answer)[field]).toEqual([expect.any(String)]);
        expect(await row(target.id)).toEqual(before);
      }
    });

    it('staff may set is_staff and is_active on create and update', async () => {
      const username = unique('made');
      const created = await api('POST', '/api/users/', {
        token: ctx.staffToken,
        json: { username, password: PASSWORD, email: `${username}@example.com`, is_staff: true, is_active: false },
      });
      expect(created.status, created.text).toBe(201);
      expect(asUser(created)).toMatchObject({ username, is_staff: true, is_active: false, is_superuser: false });
      expect(await row(asUser(created).id)).toMatchObject({ isStaff: true, isActive: false });

      const target = await fixtureUser();
      const patched = await api('PATCH', `/api/users/${target.id}/`, { token: ctx.staffToken, json: { is_staff: true } });
      expect(patched.status, patched.text).toBe(200);
      expect(asUser(patched).is_staff).toBe(true);
      expect(await row(target.id)).toMatchObject({ isStaff: true, isSuperuser: false });
    });

    it('a staff user who is not a superuser gets 403 for is_superuser; a superuser may set it', async () => {
      const username = unique('su');
      for (const value of [true, false]) {
        const refused = await api('POST', '/api/users/', { token: ctx.staffToken, json: { username, password: PASSWORD, is_superuser: value } });
        expect(refused.status, refused.text).toBe(403);
        expect(await fx.server.latchkey.storage.users.findByLogin(username)).toBeUndefined();
      }
      const target = await fixtureUser();
      const before = await row(target.id);
      const refused = await api('PATCH', `/api/users/${target.id}/`, { token: ctx.staffToken, json: { is_superuser: true } });
      expect(refused.status, refused.text).toBe(403);
      // Nor on themselves.
      const self = await api('PATCH', `/api/users/${ctx.staff.id}/`, { token: ctx.staffToken, json: { is_superuser: true } });
      expect(self.status, self.text).toBe(403);
      expect(await row(target.id)).toEqual(before);
      expect((await row(ctx.staff.id))?.isSuperuser).toBe(false);

      const created = await api('POST', '/api/users/', { token: ctx.superToken, json: { username, password: PASSWORD, email: `${username}@example.com`, is_superuser: true, is_staff: true } });
      expect(created.status, created.text).toBe(201);
      expect(asUser(created)).toMatchObject({ is_superuser: true, is_staff: true });
      const promoted = await api('PATCH', `/api/users/${target.id}/`, { token: ctx.superToken, json: { is_superuser: true } });
      expect(promoted.status, promoted.text).toBe(200);
      expect(asUser(promoted).is_superuser).toBe(true);
      expect((await row(target.id))?.isSuperuser).toBe(true);
    });

    it('staff sending a non-boolean for a privileged flag get a 400 field error', async () => {
      const target = await fixtureUser();
      const before = await row(target.id);
      const answer = await api('PATCH', `/api/users/${target.id}/`, { token: ctx.staffToken, json: { is_active: 'no', is_staff: 1 } });
      expect(answer.status, answer.text).toBe(400);
      expect(Object.keys(fieldsOf(answer)).sort()).toEqual(['is_active', 'is_staff']);
      expect(await row(target.id)).toEqual(before);
    });
  });

  // ------------------------------------------------------------------------------ IDOR

  describe('IDOR', () => {
    it('user A cannot read, replace, patch or delete user B; B is unchanged and answers look like a missing id', async () => {
      const a = await fixtureUser();
      const b = await fixtureUser();
      const before = await row(b.id);
      const { access } = await apiLogin(a.username);
      const { access_token } = await oauthLogin(a.username);
      const missing = (await api('GET', '/api/users/987654321/', { token: access })).text;
      for (const token of [access, access_token]) {
        for (const [method, json] of [
          ['GET'],
          ['PUT', { username: unique('idor'), email: 'mallory@example.com' }],
          ['PATCH', { email: 'mallory@example.com', password: NEW_PASSWORD, current_password: PASSWORD }],
          ['PATCH', { first_name: 'Mallory' }],
          ['DELETE'],
        ] as Array<[string, Json?]>) {
          const answer = await api(method, `/api/users/${b.id}/`, { token, json });
          expect(answer.status, `${method}: ${answer.text}`).toBe(404);
          expect(answer.json['error']).toBe('not_found');
          expect(answer.text).toBe(missing);
        }
      }
      expect(await row(b.id)).toEqual(before);
      expect((await tokenAnswer(b.username, PASSWORD)).status).toBe(200);
    });

    it.each(['0', '-1', 'abc', '1.5', '1e3', '99999999999999999999'])('answers 404 to an id of %s', async (id) => {
      const answer = await api('GET', `/api/users/${id}/`, { token: ctx.staffToken });
      expect(answer.status, answer.text).toBe(404);
    });
  });
});
