import type { Answer, ApiRequest } from '../helpers/http.js';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NewUser, User } from '../../src/storage/users.js';
import { makeClient, PASSWORD } from '../helpers/rp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { apiLogin as sharedApiLogin, describeOnBackends, type ApiPair } from '../helpers/fixture.js';

/**
 * The user-management REST API (/api/users/, /auth/me/) over real HTTP, as its clients use
 * it: who may do what, mass assignment, IDOR, pagination/search/ordering, validation,
 * uniqueness, PUT/PATCH semantics, password changes and the revocation they cause.
 */

type Json = Record<string, unknown>;

/** The API's user representation. */
interface UserJson {
  id: number;
  username: string;
  email: string;
  first_name: string;
  last_name: string;
  is_active: boolean;
  is_staff: boolean;
  is_superuser: boolean;
  email_verified: boolean;
  date_joined: string;
  last_login: string | null;
  updated_at: string;
}

interface Page {
  count: number;
  next: string | null;
  previous: string | null;
  results: UserJson[];
}

const NEW_PASSWORD = 'an entirely different passphrase';
const ATTACKER_PASSWORD = 'attacker chosen passphrase';

/**
 * Every key, at any depth, of a JSON value, except the names in a validation error's
 * `fields` (which name the bad input, e.g. "password", and carry only messages).
 */
function keysOf(value: unknown, out: string[] = [], inFields = false): string[] {
  if (Array.isArray(value)) for (const item of value) keysOf(item, out);
  else if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      if (!inFields) out.push(key);
      keysOf(inner, out, !inFields && key === 'fields');
    }
  }
  return out;
}

const asUser = (answer: Answer) => answer.json as unknown as UserJson;
const asPage = (answer: Answer) => answer.json as unknown as Page;
const fieldsOf = (answer: Answer) => (answer.json['fields'] ?? {}) as Record<string, string[]>;

describeOnBackends('users REST API over HTTP (%s)', (fx) => {
  /** bcrypt hash of PASSWORD, shared by fixtures so they cost one hash in all. */
  let passwordHash: string;
  /** bcrypt hash of ATTACKER_PASSWORD, for password_hash mass-assignment attempts. */
  let attackerHash: string;
  let staff: User;
  let staffToken: string;
  let superuser: User;
  let superToken: string;
  let other: User;
  let otherToken: string;
  /** A confidential client allowed only client_credentials. */
  let machine: { id: string; secret: string };
  let seq = 0;

  const unique = (prefix = 'u') => `${prefix}${++seq}x${randomBytes(3).toString('hex')}`;

  /**
   * One HTTP call. Every answer is checked for password leaks: no key containing "password"
   * at any depth and no bcrypt hash of our fixtures in the text.
   */
  async function api(
    method: string,
    path: string,
    opts: ApiRequest = {},
  ): Promise<Answer> {
    const answer = await fx.api(method, path, opts);
    const { text, json } = answer;
    const leaked = keysOf(json).filter((key) => /password/i.test(key));
    expect(leaked, `${method} ${path} answered with password keys: ${text}`).toEqual([]);
    if (passwordHash) expect(text).not.toContain(passwordHash);
    if (attackerHash) expect(text).not.toContain(attackerHash);
    expect(text).not.toMatch(/\$2[aby]\$\d\d\$/);
    return answer;
  }

  /** A user straight through the repository, with PASSWORD. */
  async function fixtureUser(overrides: Partial<NewUser> = {}): Promise<User> {
    const name = unique('user');
    return fx.server.latchkey.users.create({
      username: name,
      email: `${name}@example.com`,
      passwordHash,
      firstName: 'Ada',
      lastName: 'Lovelace',
      emailVerified: true,
      ...overrides,
    });
  }

  const row = (id: number) => fx.server.latchkey.users.findById(id);

  /** POST /api/token/: the raw answer. */
  const tokenAnswer = (username: string, password: string) => api('POST', '/api/token/', { json: { username, password } });

  /** An API JWT pair for a user who knows their password. */
  const apiLogin = (username: string, password = PASSWORD): Promise<ApiPair> => sharedApiLogin(api, username, password);

  /** The legacy /users/login/ form: an OAuth access token (and refresh token) from the provider. */
  async function oauthLogin(username: string, password = PASSWORD): Promise<{ access_token: string; refresh_token: string }> {
    const answer = await api('POST', '/users/login/', { form: { username, password } });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json['access_token']).toEqual(expect.any(String));
    return answer.json as unknown as { access_token: string; refresh_token: string };
  }

  const refreshAnswer = (refresh: string) => api('POST', '/api/token/refresh/', { json: { refresh } });
  const userinfo = (accessToken: string) => api('GET', `${fx.server.issuer}/me`, { token: accessToken });

  /** /api/token/refresh/ refusing a refresh token. */
  function expectRefreshRefused(answer: Answer): void {
    expect(answer.status, answer.text).toBe(401);
    expect(answer.json['error']).toBe('invalid_token');
    expect(answer.json['access']).toBeUndefined();
  }

  /** A 401 from our API with the RFC 6750 challenge. */
  function expectInvalidToken(answer: Answer): void {
    expect(answer.status, answer.text).toBe(401);
    expect(answer.headers.get('www-authenticate') ?? '').toMatch(/^Bearer /);
    expect(answer.headers.get('www-authenticate') ?? '').toContain('error="invalid_token"');
    expect(answer.json['error']).toBe('invalid_token');
  }

  /** A client_credentials token; `forApi`: for our REST API with the users scopes, else for no resource. */
  async function clientCredentialsToken({ forApi = true } = {}): Promise<string> {
    const basic = Buffer.from(`${encodeURIComponent(machine.id)}:${encodeURIComponent(machine.secret)}`).toString('base64');
    const answer = await api('POST', `${fx.server.issuer}/token`, {
      form: { grant_type: 'client_credentials', ...(forApi ? { resource: `${fx.server.latchkey.config.publicUrl}/api`, scope: 'users:read users:write' } : {}) },
      authorization: `Basic ${basic}`,
    });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json['access_token']).toEqual(expect.any(String));
    return answer.json['access_token'] as string;
  }

  beforeAll(async () => {
    const { hasher, users } = fx.server.latchkey;
    [passwordHash, attackerHash] = await Promise.all([hasher.hash(PASSWORD), hasher.hash(ATTACKER_PASSWORD)]);
    staff = await users.create({ username: unique('staff'), email: null, passwordHash, isStaff: true });
    superuser = await users.create({ username: unique('root'), email: null, passwordHash, isStaff: true, isSuperuser: true });
    other = await fixtureUser();
    [staffToken, superToken, otherToken] = (
      await Promise.all([apiLogin(staff.username), apiLogin(superuser.username), apiLogin(other.username)])
    ).map((pair) => pair.access) as [string, string, string];
    const made = await makeClient(fx.server.latchkey, { name: 'Machine', redirectUris: [], grantTypes: ['client_credentials'], apiScopes: ['users:read', 'users:write'] });
    machine = { id: made.client.clientId, secret: made.clientSecret ?? '' };
  });

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
        other: async () => otherToken,
        staff: async () => staffToken,
      };
      const caller: Record<Role, number | undefined> = { anonymous: undefined, self: target.id, other: other.id, staff: staff.id };
      const payload = body?.(role);
      const answer = await api(method, path(target.id), { token: await tokens[role](), json: payload });
      expect(answer.status, answer.text).toBe(status);

      if (status >= 400) {
        expect(answer.json['error']).toEqual(expect.any(String));
        expect(answer.json['error_description']).toEqual(expect.any(String));
        if (status === 401) expectInvalidToken(answer);
        if (status === 403) expect(answer.json['error']).toBe('permission_denied');
        if (targeted) expect(await row(target.id)).toEqual(before);
        if (method === 'POST') expect(await fx.server.latchkey.users.findByLogin(String(payload?.['username']))).toBeUndefined();
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
        expect(await row(created.id)).toBeDefined();
        return;
      }
      // 200
      if (route === 'GET /api/users/') {
        expect(asPage(answer).count).toBe(await fx.server.latchkey.users.count());
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
      expect((await api('GET', `/api/users/${other.id}/`, { token: access_token })).status).toBe(404);
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
      for (const path of ['/auth/me/', '/api/users/', `/api/users/${other.id}/`]) {
        expectInvalidToken(await api('GET', path, { authorization }));
      }
      expectInvalidToken(await api('PATCH', `/api/users/${other.id}/`, { authorization, json: { first_name: 'x' } }));
      expectInvalidToken(await api('DELETE', `/api/users/${other.id}/`, { authorization }));
      expect(await row(other.id)).toMatchObject({ firstName: 'Ada' });
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
        new SignJWT({ sub: String(other.id), user_id: other.id, token_type: 'access', jti: randomBytes(12).toString('base64url') })
          .setProtectedHeader({ alg: 'RS256', typ, kid: jwk.kid! })
          .setIssuer(fx.server.issuer)
          .setAudience(`${fx.server.url}/api`)
          .setIssuedAt(iat)
          .setExpirationTime(exp)
          .sign(signingKey);

      const control = await api('GET', '/auth/me/', { token: await forge(key, now, now + 60) });
      expect(control.status, control.text).toBe(200);
      expect(asUser(control).id).toBe(other.id);

      const expired = await api('GET', '/auth/me/', { token: await forge(key, now - 3600, now - 1800) });
      expectInvalidToken(expired);
      expect(expired.headers.get('www-authenticate')).toMatch(/expired/i);

      const { privateKey } = await generateKeyPair('RS256', { extractable: true });
      const foreign = await importJWK({ ...(await exportJWK(privateKey)), alg: 'RS256' }, 'RS256');
      expectInvalidToken(await api('GET', '/auth/me/', { token: await forge(foreign, now, now + 60) }));

      const { refresh } = await apiLogin(other.username);
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
    ['password_hash', () => attackerHash],
    ['id', () => 424242],
    ['date_joined', () => '2001-01-01T00:00:00.000Z'],
    ['last_login', () => '2001-01-01T00:00:00.000Z'],
    ['updated_at', () => '2001-01-01T00:00:00.000Z'],
    ['email_verified', () => true],
  ];
  const GUARDED = [...PRIVILEGED, ...READ_ONLY];

  describe('mass assignment', () => {
    it.each(GUARDED)('create: anonymous and plain users sending %s get 403 and no user is made', async (field, value) => {
      for (const token of [undefined, otherToken]) {
        const username = unique('mass');
        const answer = await api('POST', '/api/users/', {
          token,
          json: { username, password: PASSWORD, email: `${username}@example.com`, [field]: value() },
        });
        expect(answer.status, answer.text).toBe(403);
        expect(answer.json['error']).toBe('permission_denied');
        expect(answer.json['error_description']).toContain(field);
        expect(await fx.server.latchkey.users.findByLogin(username)).toBeUndefined();
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
      const created = await api('POST', '/api/users/', { token: staffToken, json: { username, password: PASSWORD, [field]: value() } });
      expect(created.status, created.text).toBe(400);
      expect(Object.keys(fieldsOf(created))).toEqual([field]);
      expect(await fx.server.latchkey.users.findByLogin(username)).toBeUndefined();

      const target = await fixtureUser({ emailVerified: false });
      const before = await row(target.id);
      for (const method of ['PATCH', 'PUT']) {
        const answer = await api(method, `/api/users/${target.id}/`, {
          token: staffToken,
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
        token: staffToken,
        json: { username, password: PASSWORD, email: `${username}@example.com`, is_staff: true, is_active: false },
      });
      expect(created.status, created.text).toBe(201);
      expect(asUser(created)).toMatchObject({ username, is_staff: true, is_active: false, is_superuser: false });
      expect(await row(asUser(created).id)).toMatchObject({ isStaff: true, isActive: false });

      const target = await fixtureUser();
      const patched = await api('PATCH', `/api/users/${target.id}/`, { token: staffToken, json: { is_staff: true } });
      expect(patched.status, patched.text).toBe(200);
      expect(asUser(patched).is_staff).toBe(true);
      expect(await row(target.id)).toMatchObject({ isStaff: true, isSuperuser: false });
    });

    it('a staff user who is not a superuser gets 403 for is_superuser; a superuser may set it', async () => {
      const username = unique('su');
      for (const value of [true, false]) {
        const refused = await api('POST', '/api/users/', { token: staffToken, json: { username, password: PASSWORD, is_superuser: value } });
        expect(refused.status, refused.text).toBe(403);
        expect(await fx.server.latchkey.users.findByLogin(username)).toBeUndefined();
      }
      const target = await fixtureUser();
      const before = await row(target.id);
      const refused = await api('PATCH', `/api/users/${target.id}/`, { token: staffToken, json: { is_superuser: true } });
      expect(refused.status, refused.text).toBe(403);
      // Nor on themselves.
      const self = await api('PATCH', `/api/users/${staff.id}/`, { token: staffToken, json: { is_superuser: true } });
      expect(self.status, self.text).toBe(403);
      expect(await row(target.id)).toEqual(before);
      expect((await row(staff.id))?.isSuperuser).toBe(false);

      const created = await api('POST', '/api/users/', { token: superToken, json: { username, password: PASSWORD, email: `${username}@example.com`, is_superuser: true, is_staff: true } });
      expect(created.status, created.text).toBe(201);
      expect(asUser(created)).toMatchObject({ is_superuser: true, is_staff: true });
      const promoted = await api('PATCH', `/api/users/${target.id}/`, { token: superToken, json: { is_superuser: true } });
      expect(promoted.status, promoted.text).toBe(200);
      expect(asUser(promoted).is_superuser).toBe(true);
      expect((await row(target.id))?.isSuperuser).toBe(true);
    });

    it('staff sending a non-boolean for a privileged flag get a 400 field error', async () => {
      const target = await fixtureUser();
      const before = await row(target.id);
      const answer = await api('PATCH', `/api/users/${target.id}/`, { token: staffToken, json: { is_active: 'no', is_staff: 1 } });
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
      const answer = await api('GET', `/api/users/${id}/`, { token: staffToken });
      expect(answer.status, answer.text).toBe(404);
    });
  });

  // ------------------------------------------------------- pagination, search, ordering

  describe('listing', () => {
    it('paginates with count, absolute next/previous links that work, and a 404 past the end', async () => {
      const prefix = unique('page');
      const made: User[] = [];
      for (let i = 0; i < 25; i++) made.push(await fixtureUser({ username: `${prefix}_${String(i).padStart(2, '0')}`, email: null }));

      const first = await api('GET', `/api/users/?search=${prefix}&page_size=10`, { token: staffToken });
      expect(first.status, first.text).toBe(200);
      const p1 = asPage(first);
      expect(Object.keys(p1).sort()).toEqual(['count', 'next', 'previous', 'results']);
      expect(p1.count).toBe(25);
      expect(p1.results).toHaveLength(10);
      expect(p1.previous).toBeNull();
      expect(p1.next).not.toBeNull();
      const next = new URL(p1.next!);
      expect(next.origin).toBe(fx.server.url);
      expect(next.pathname).toBe('/api/users/');
      expect(next.searchParams.get('page')).toBe('2');
      expect(next.searchParams.get('page_size')).toBe('10');
      expect(next.searchParams.get('search')).toBe(prefix);

      const second = await api('GET', p1.next!, { token: staffToken });
      expect(second.status, second.text).toBe(200);
      const p2 = asPage(second);
      expect(p2.count).toBe(25);
      expect(p2.results).toHaveLength(10);
      expect(p2.previous).not.toBeNull();
      expect(new URL(p2.previous!).origin).toBe(fx.server.url);

      const back = await api('GET', p2.previous!, { token: staffToken });
      expect(asPage(back).results.map((u) => u.id)).toEqual(p1.results.map((u) => u.id));

      const third = await api('GET', p2.next!, { token: staffToken });
      const p3 = asPage(third);
      expect(p3.results).toHaveLength(5);
      expect(p3.next).toBeNull();
      expect(new URL(p3.previous!).searchParams.get('page')).toBe('2');

      // Every user exactly once, in the default order (id).
      const seen = [...p1.results, ...p2.results, ...p3.results].map((u) => u.id);
      expect(seen).toEqual(made.map((u) => u.id));

      const past = await api('GET', `/api/users/?search=${prefix}&page_size=10&page=4`, { token: staffToken });
      expect(past.status, past.text).toBe(404);

      // Default page size is 20.
      const dflt = asPage(await api('GET', `/api/users/?search=${prefix}`, { token: staffToken }));
      expect(dflt.results).toHaveLength(20);
      expect(new URL(dflt.next!).searchParams.get('page')).toBe('2');
    });

    it.each(['0', '-1', 'abc', '1.5', '%20'])('answers 400 to page and page_size = %s', async (value) => {
      for (const param of ['page', 'page_size']) {
        const answer = await api('GET', `/api/users/?${param}=${value}`, { token: staffToken });
        expect(answer.status, `${param}=${value}: ${answer.text}`).toBe(400);
        expect(answer.json['error']).toBe('invalid_request');
      }
    });

    it('caps page_size at 100', async () => {
      const { users } = fx.server.latchkey;
      while ((await users.count()) < 105) await fixtureUser();
      const total = await users.count();
      const answer = await api('GET', '/api/users/?page_size=1000', { token: staffToken });
      expect(answer.status, answer.text).toBe(200);
      const page = asPage(answer);
      expect(page.count).toBe(total);
      expect(page.results).toHaveLength(100);
      expect(page.next).not.toBeNull();
      const rest = asPage(await api('GET', page.next!, { token: staffToken }));
      expect(rest.results).toHaveLength(Math.min(100, total - 100));
      expect(rest.results[0]?.id).not.toBe(page.results[0]?.id);
      const ids = new Set([...page.results, ...rest.results].map((u) => u.id));
      expect(ids.size).toBe(page.results.length + rest.results.length);
    });

    it('searches username, email, first and last name case-insensitively', async () => {
      const tag = unique('srch');
      const byName = await fixtureUser({ username: `${tag}_name`, email: null });
      const byEmail = await fixtureUser({ email: `${tag}_mail@example.org` });
      const byFirst = await fixtureUser({ firstName: `${tag}First` });
      const byLast = await fixtureUser({ lastName: `${tag}Last` });
      const ids = async (search: string) => {
        const answer = await api('GET', `/api/users/?search=${encodeURIComponent(search)}&page_size=100`, { token: staffToken });
        expect(answer.status, answer.text).toBe(200);
        expect(asPage(answer).count).toBe(asPage(answer).results.length);
        return asPage(answer).results.map((u) => u.id).sort((x, y) => x - y);
      };
      const all = [byName, byEmail, byFirst, byLast].map((u) => u.id).sort((x, y) => x - y);
      expect(await ids(tag)).toEqual(all);
      expect(await ids(tag.toUpperCase())).toEqual(all);
      expect(await ids(`${tag}_NAME`)).toEqual([byName.id]);
      expect(await ids(`${tag}_mail@EXAMPLE`)).toEqual([byEmail.id]);
      expect(await ids(`${tag}first`)).toEqual([byFirst.id]);
      expect(await ids(`${tag}LAST`)).toEqual([byLast.id]);
      expect(await ids(`${tag}nothing`)).toEqual([]);
    });

    it('treats %, _ and \\ in a search as literal characters', async () => {
      const tag = unique('lit').toLowerCase();
      const percent = await fixtureUser({ firstName: `Fifty%Off${tag}` });
      await fixtureUser({ firstName: `FiftyXOff${tag}` });
      const underscore = await fixtureUser({ firstName: `Qz_Qw${tag}` });
      await fixtureUser({ firstName: `QzXQw${tag}` });
      const backslash = await fixtureUser({ lastName: `Back\\Slash${tag}` });
      await fixtureUser({ lastName: `BackXSlash${tag}` });
      const ids = async (search: string) => {
        const answer = await api('GET', `/api/users/?search=${encodeURIComponent(search)}&page_size=100`, { token: staffToken });
        expect(answer.status, answer.text).toBe(200);
        return asPage(answer).results.map((u) => u.id);
      };
      // Only this one user anywhere has a % (fixtures never do), so '%' alone finds only it.
      expect(await ids('%')).toEqual([percent.id]);
      expect(await ids(`y%o`)).toEqual([percent.id]);
      expect(await ids(`qz_qw`)).toEqual([underscore.id]);
      expect(await ids('\\')).toEqual([backslash.id]);
      expect(await ids(`k\\s`)).toEqual([backslash.id]);
      expect(await ids('%%')).toEqual([]);
    });

    it('orders by -username, date_joined and several fields; refuses unknown fields with 400', async () => {
      const prefix = unique('ord');
      const made: User[] = [];
      // Letters chosen so every collation agrees on their order.
      const lastNames: Record<string, string> = { a: 'zeta', b: 'alpha', c: 'zeta', d: 'alpha', e: 'alpha' };
      for (const letter of ['c', 'a', 'e', 'b', 'd']) {
        made.push(await fixtureUser({ username: `${prefix}${letter}`, email: null, lastName: lastNames[letter] ?? '' }));
      }
      const list = async (ordering: string) => {
        const answer = await api('GET', `/api/users/?search=${prefix}&ordering=${encodeURIComponent(ordering)}`, { token: staffToken });
        expect(answer.status, answer.text).toBe(200);
        return asPage(answer).results;
      };
      expect((await list('-username')).map((u) => u.username)).toEqual(['e', 'd', 'c', 'b', 'a'].map((l) => `${prefix}${l}`));
      expect((await list('username')).map((u) => u.username)).toEqual(['a', 'b', 'c', 'd', 'e'].map((l) => `${prefix}${l}`));
      const byJoined = await list('date_joined');
      expect(byJoined.map((u) => u.id)).toEqual(made.map((u) => u.id));
      const joined = byJoined.map((u) => Date.parse(u.date_joined));
      expect(joined).toEqual([...joined].sort((x, y) => x - y));
      expect((await list('-date_joined')).map((u) => Date.parse(u.date_joined))).toEqual([...joined].reverse());
      expect((await list('last_name,-username')).map((u) => u.username)).toEqual(['e', 'd', 'b', 'c', 'a'].map((l) => `${prefix}${l}`));

      // ordering is kept in the page links.
      const paged = asPage(await api('GET', `/api/users/?search=${prefix}&ordering=-username&page_size=2`, { token: staffToken }));
      expect(new URL(paged.next!).searchParams.get('ordering')).toBe('-username');
      const page2 = asPage(await api('GET', paged.next!, { token: staffToken }));
      expect(page2.results.map((u) => u.username)).toEqual(['c', 'b'].map((l) => `${prefix}${l}`));

      for (const bad of ['password_hash', 'bogus', '-', 'username,', 'is_staff', 'username;drop table users', '--username']) {
        const answer = await api('GET', `/api/users/?ordering=${encodeURIComponent(bad)}`, { token: staffToken });
        expect(answer.status, `ordering=${bad}: ${answer.text}`).toBe(400);
        expect(answer.json['error']).toBe('invalid_request');
      }
      expect(await fx.server.latchkey.users.count()).toBeGreaterThan(0);
    });
  });

  // ------------------------------------------------------------------ validation and 409

  describe('validation', () => {
    const long = 'x'.repeat(151);
    it.each<[string, Json, string[]]>([
      ['a short password', { password: 'short12' }, ['password']],
      ['a bad email', { email: 'not-an-email' }, ['email']],
      ['an email with spaces', { email: 'a b@example.com' }, ['email']],
      ['bad username characters', { username: 'bad user!' }, ['username']],
      ['a username with a slash', { username: 'a/b' }, ['username']],
      ['a 151-character username', { username: long }, ['username']],
      ['a missing username', { username: undefined }, ['username']],
      ['a missing password', { password: undefined }, ['password']],
      ['an empty username and password', { username: '', password: '' }, ['username', 'password']],
      ['a numeric username', { username: 12345 }, ['username']],
      ['a numeric password', { password: 123456789 }, ['password']],
      ['a boolean email', { email: true }, ['email']],
      ['an object first_name', { first_name: { a: 1 } }, ['first_name']],
      ['an array last_name', { last_name: ['x'] }, ['last_name']],
      ['a 151-character first_name', { first_name: long }, ['first_name']],
      ['an unknown field', { favourite_colour: 'blue' }, ['favourite_colour']],
      ['current_password on create', { current_password: PASSWORD }, ['current_password']],
      ['several problems at once', { username: 'no spaces allowed', password: 'short', email: 'nope' }, ['username', 'password', 'email']],
    ])('answers 400 with fields for %s', async (_what, change, expectedFields) => {
      const username = unique('val');
      const body: Json = { username, password: PASSWORD, email: `${username}@example.com`, ...change };
      for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
      const before = await fx.server.latchkey.users.count();
      const answer = await api('POST', '/api/users/', { json: body });
      expect(answer.status, answer.text).toBe(400);
      expect(answer.headers.get('content-type')).toMatch(/application\/json/);
      expect(answer.json['error']).toBe('invalid_request');
      expect(answer.json['error_description']).toEqual(expect.any(String));
      const fields = fieldsOf(answer);
      expect(Object.keys(fields).sort()).toEqual([...expectedFields].sort());
      for (const messages of Object.values(fields)) {
        expect(messages.length).toBeGreaterThan(0);
        for (const message of messages) expect(message).toEqual(expect.any(String));
      }
      expect(await fx.server.latchkey.users.count()).toBe(before);
    });

    it('says which field is required', async () => {
      const answer = await api('POST', '/api/users/', { json: { email: 'nobody@example.com' } });
      expect(answer.status).toBe(400);
      expect(fieldsOf(answer)).toEqual({ username: [expect.stringMatching(/required/i)], password: [expect.stringMatching(/required/i)] });
      const noEmail = await api('POST', '/api/users/', { json: { username: unique('noemail'), password: PASSWORD } });
      expect(noEmail.status).toBe(400);
      expect(fieldsOf(noEmail)).toEqual({ email: [expect.stringMatching(/required/i)] });
    });

    it('validates PATCH and PUT fields the same way and leaves the row alone', async () => {
      const target = await fixtureUser();
      const { access } = await apiLogin(target.username);
      const before = await row(target.id);
      for (const [method, json, field] of [
        ['PATCH', { email: 'broken' }, 'email'],
        ['PATCH', { username: 'white space' }, 'username'],
        ['PATCH', { first_name: 7 }, 'first_name'],
        ['PATCH', { password: 'short', current_password: PASSWORD }, 'password'],
        ['PATCH', { nickname: 'x' }, 'nickname'],
        ['PUT', { first_name: 'NoUsername' }, 'username'],
        ['PUT', { username: '' }, 'username'],
      ] as Array<[string, Json, string]>) {
        const answer = await api(method, `/api/users/${target.id}/`, { token: access, json });
        expect(answer.status, `${method} ${JSON.stringify(json)}: ${answer.text}`).toBe(400);
        expect(Object.keys(fieldsOf(answer))).toContain(field);
      }
      expect(await row(target.id)).toEqual(before);
    });

    it('accepts a minimal registration (no names); users without email (legacy endpoint) do not collide', async () => {
      const username = unique('min');
      const answer = await api('POST', '/api/users/', { json: { username, password: PASSWORD, email: `${username}@example.com` } });
      expect(answer.status, answer.text).toBe(201);
      expect(asUser(answer)).toMatchObject({ username, first_name: '', last_name: '', is_active: true, is_staff: false, is_superuser: false, email_verified: false, last_login: null });
      // /users/register/ keeps email optional, as the old provider did.
      for (let i = 0; i < 2; i++) {
        const legacy = unique('min');
        const created = await fetch(`${fx.server.url}/users/register/`, {
          method: 'POST',
          body: new URLSearchParams({ username: legacy, password: PASSWORD, confirm_password: PASSWORD }),
        });
        expect(created.status).toBe(201);
        expect(((await created.json()) as Json)['email']).toBe('');
      }
    });

    it('stores what was registered and the new user can sign in', async () => {
      const username = unique('Reg');
      const answer = await api('POST', '/api/users', {
        json: { username, password: PASSWORD, email: `  ${username}@Example.COM `, first_name: 'Grace', last_name: 'Hopper' },
      });
      expect(answer.status, answer.text).toBe(201);
      const user = asUser(answer);
      expect(user).toMatchObject({ username, email: `${username.toLowerCase()}@example.com`, first_name: 'Grace', last_name: 'Hopper' });
      expect(Object.keys(user).sort()).toEqual(
        ['date_joined', 'email', 'email_verified', 'first_name', 'id', 'is_active', 'is_staff', 'is_superuser', 'last_login', 'last_name', 'pending_email', 'updated_at', 'username'],
      );
      const { access } = await apiLogin(username.toUpperCase());
      expect(asUser(await api('GET', '/auth/me', { token: access })).id).toBe(user.id);
    });

    it('answers a malformed JSON body with a JSON 400', async () => {
      const target = await fixtureUser();
      const before = await row(target.id);
      for (const [method, path, token] of [
        ['POST', '/api/users/', undefined],
        ['PATCH', `/api/users/${target.id}/`, staffToken],
        ['PUT', `/api/users/${target.id}/`, staffToken],
        ['POST', '/api/token/', undefined],
      ] as Array<[string, string, string | undefined]>) {
        for (const raw of ['{"username": "x",', '[1, 2, 3]', '"just a string"', 'null']) {
          const answer = await api(method, path, { token, raw });
          expect(answer.status, `${method} ${path} ${raw}: ${answer.text}`).toBe(400);
          expect(answer.headers.get('content-type')).toMatch(/application\/json/);
          expect(answer.json['error']).toEqual(expect.any(String));
        }
      }
      expect(await row(target.id)).toEqual(before);
    });
  });

  describe('uniqueness', () => {
    it('answers 409 to a username taken in another case', async () => {
      const taken = await fixtureUser({ username: unique('Taken') });
      for (const username of [taken.username.toUpperCase(), taken.username.toLowerCase()]) {
        const answer = await api('POST', '/api/users/', { json: { username, password: PASSWORD, email: `${username}@example.com` } });
        expect(answer.status, answer.text).toBe(409);
        expect(answer.json['error']).toBe('conflict');
        expect(answer.json['error_description']).toMatch(/username/);
      }
    });

    it('answers 409 to an email taken in another case', async () => {
      const taken = await fixtureUser();
      const answer = await api('POST', '/api/users/', {
        json: { username: unique('dup'), password: PASSWORD, email: taken.email!.toUpperCase() },
      });
      expect(answer.status, answer.text).toBe(409);
      expect(answer.json['error_description']).toMatch(/email/);
    });

    it('answers 409 when PATCH or PUT take an existing username or email, and allows renaming oneself in another case', async () => {
      const a = await fixtureUser();
      const b = await fixtureUser();
      const { access } = await apiLogin(a.username);
      const before = await row(a.id);
      for (const [method, json] of [
        ['PATCH', { username: b.username.toUpperCase() }],
        ['PATCH', { email: b.email!.toUpperCase(), current_password: PASSWORD }],
        ['PUT', { username: a.username, email: ` ${b.email!.toUpperCase()} `, current_password: PASSWORD }],
      ] as Array<[string, Json]>) {
        const answer = await api(method, `/api/users/${a.id}/`, { token: access, json });
        expect(answer.status, `${method} ${JSON.stringify(json)}: ${answer.text}`).toBe(409);
      }
      expect(await row(a.id)).toEqual(before);
      const renamed = await api('PATCH', `/api/users/${a.id}/`, { token: access, json: { username: a.username.toUpperCase(), email: a.email!.toUpperCase() } });
      expect(renamed.status, renamed.text).toBe(200);
      expect(asUser(renamed)).toMatchObject({ username: a.username.toUpperCase(), email: a.email, email_verified: true });
    });
  });

  // --------------------------------------------------------------------- trailing slash

  describe('trailing slash', () => {
    it.each(['', '/'])('serves every route with suffix "%s"', async (slash) => {
      const username = unique('slash');
      const created = await api('POST', `/api/users${slash}`, { json: { username, password: PASSWORD, email: `${username}@example.com` } });
      expect(created.status, created.text).toBe(201);
      const id = asUser(created).id;
      const token = await api('POST', `/api/token${slash}`, { json: { username, password: PASSWORD } });
      expect(token.status, token.text).toBe(200);
      const access = token.json['access'] as string;
      const refreshed = await api('POST', `/api/token/refresh${slash}`, { json: { refresh: token.json['refresh'] } });
      expect(refreshed.status, refreshed.text).toBe(200);
      expect((await api('GET', `/auth/me${slash}`, { token: access })).status).toBe(200);
      expect((await api('GET', `/api/users${slash}`, { token: staffToken })).status).toBe(200);
      expect((await api('GET', `/api/users/${id}${slash}`, { token: access })).status).toBe(200);
      expect((await api('PATCH', `/api/users/${id}${slash}`, { token: access, json: { first_name: 'Slash' } })).status).toBe(200);
      // PUT without email drops one's own address, and deleting oneself: both need the password.
      expect((await api('PUT', `/api/users/${id}${slash}`, { token: access, json: { username, current_password: PASSWORD } })).status).toBe(200);
      expect((await api('DELETE', `/api/users/${id}${slash}`, { token: access, json: { current_password: PASSWORD } })).status).toBe(204);
      expect(await row(id)).toBeUndefined();
    });
  });

  // ------------------------------------------------------------------ PUT/PATCH semantics

  describe('PUT and PATCH', () => {
    it('PUT replaces: absent names and email are reset, email_verified too', async () => {
      const target = await fixtureUser({ firstName: 'Grace', lastName: 'Hopper', emailVerified: true });
      const { access } = await apiLogin(target.username);
      const answer = await api('PUT', `/api/users/${target.id}/`, { token: access, json: { username: target.username, current_password: PASSWORD } });
      expect(answer.status, answer.text).toBe(200);
      expect(asUser(answer)).toMatchObject({ username: target.username, first_name: '', last_name: '', email: '', email_verified: false });
      expect(await row(target.id)).toMatchObject({ firstName: '', lastName: '', email: null, emailVerified: false, passwordHash });
      // The password is untouched by a PUT without one.
      expect((await tokenAnswer(target.username, PASSWORD)).status).toBe(200);
    });

    it('PUT sets the given fields', async () => {
      const target = await fixtureUser();
      const newName = unique('renamed');
      const answer = await api('PUT', `/api/users/${target.id}/`, {
        token: staffToken,
        json: { username: newName, email: `${newName}@example.net`, first_name: 'Katherine' },
      });
      expect(answer.status, answer.text).toBe(200);
      expect(asUser(answer)).toMatchObject({ id: target.id, username: newName, email: `${newName}@example.net`, first_name: 'Katherine', last_name: '' });
    });

    it('PATCH changes only what is sent', async () => {
      const target = await fixtureUser({ firstName: 'Grace', lastName: 'Hopper' });
      const { access } = await apiLogin(target.username);
      const answer = await api('PATCH', `/api/users/${target.id}/`, { token: access, json: { last_name: 'Brewster' } });
      expect(answer.status, answer.text).toBe(200);
      expect(asUser(answer)).toMatchObject({ username: target.username, email: target.email, first_name: 'Grace', last_name: 'Brewster', email_verified: true });
      const empty = await api('PATCH', `/api/users/${target.id}/`, { token: access, json: {} });
      expect(empty.status, empty.text).toBe(200);
      expect(asUser(empty)).toMatchObject({ first_name: 'Grace', last_name: 'Brewster' });
    });

    it('staff changing an email set it unverified; the same email in another case changes nothing', async () => {
      const target = await fixtureUser({ emailVerified: true });
      const same = await api('PATCH', `/api/users/${target.id}/`, { token: staffToken, json: { email: target.email!.toUpperCase() } });
      expect(same.status, same.text).toBe(200);
      expect(asUser(same)).toMatchObject({ email: target.email, email_verified: true, pending_email: null });
      const changed = await api('PATCH', `/api/users/${target.id}/`, { token: staffToken, json: { email: `new.${target.email}` } });
      expect(changed.status, changed.text).toBe(200);
      expect(asUser(changed)).toMatchObject({ email: `new.${target.email}`, email_verified: false, pending_email: null });
      expect((await row(target.id))?.emailVerified).toBe(false);
    });

    it("one's own new email waits for verification; the old one stays in use", async () => {
      const target = await fixtureUser({ emailVerified: true });
      const { access } = await apiLogin(target.username);
      const changed = await api('PATCH', `/api/users/${target.id}/`, { token: access, json: { email: `new.${target.email}`, current_password: PASSWORD } });
      expect(changed.status, changed.text).toBe(200);
      expect(asUser(changed)).toMatchObject({ email: target.email, email_verified: true, pending_email: `new.${target.email}` });
      // Sign-in by email still knows only the old address.
      expect((await tokenAnswer(target.email!, PASSWORD)).status).toBe(200);
      expect((await tokenAnswer(`new.${target.email}`, PASSWORD)).status).toBe(401);
    });
  });

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
      const answer = await api('PATCH', `/api/users/${target.id}/`, { token: staffToken, json: { password: NEW_PASSWORD } });
      expect(answer.status, answer.text).toBe(200);
      expect((await tokenAnswer(target.username, PASSWORD)).status).toBe(401);
      await apiLogin(target.username, NEW_PASSWORD);
      expectRefreshRefused(await refreshAnswer(pair.refresh));
      expect((await userinfo(oauth.access_token)).status).toBe(401);
      expectInvalidToken(await api('GET', '/auth/me/', { token: oauth.access_token }));
      // The staff member's own session is untouched.
      expect((await api('GET', '/auth/me/', { token: staffToken })).status).toBe(200);
    });

    it('staff changing their own password still need current_password', async () => {
      const self = await fx.server.latchkey.users.create({ username: unique('staffself'), email: null, passwordHash, isStaff: true });
      const { access } = await apiLogin(self.username);
      const missing = await api('PATCH', `/api/users/${self.id}/`, { token: access, json: { password: NEW_PASSWORD } });
      expect(missing.status, missing.text).toBe(400);
      expect(Object.keys(fieldsOf(missing))).toEqual(['current_password']);
      expect((await row(self.id))?.passwordHash).toBe(passwordHash);
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
      const oidcRows = await fx.server.latchkey.knex('oidc_payloads').where({ account_id: String(target.id) }).count<{ n: number }[]>({ n: '*' });
      expect(Number(oidcRows[0]?.n)).toBe(0);

      expect((await userinfo(oauth.access_token)).status).toBe(401);
      expectInvalidToken(await api('GET', '/auth/me/', { token: oauth.access_token }));
      expectInvalidToken(await api('GET', '/auth/me/', { token: pair.access }));
      expectRefreshRefused(await refreshAnswer(pair.refresh));
      expect((await tokenAnswer(target.username, PASSWORD)).status).toBe(401);
      expect((await api('GET', `/api/users/${target.id}/`, { token: staffToken })).status).toBe(404);
      expect((await api('DELETE', `/api/users/${target.id}/`, { token: staffToken })).status).toBe(404);
    });

    it('staff deactivating a user (PATCH is_active false) stops every token of theirs', async () => {
      const target = await fixtureUser();
      const pair = await apiLogin(target.username);
      const oauth = await oauthLogin(target.username);
      const answer = await api('PATCH', `/api/users/${target.id}/`, { token: staffToken, json: { is_active: false } });
      expect(answer.status, answer.text).toBe(200);
      expect(asUser(answer).is_active).toBe(false);

      expectInvalidToken(await api('GET', '/auth/me/', { token: pair.access }));
      expectInvalidToken(await api('GET', '/auth/me/', { token: oauth.access_token }));
      expect((await userinfo(oauth.access_token)).status).toBe(401);
      expect((await tokenAnswer(target.username, PASSWORD)).status).toBe(401);
      expectRefreshRefused(await refreshAnswer(pair.refresh));
      expect((await api('POST', '/users/login/', { form: { username: target.username, password: PASSWORD } })).status).toBe(401);

      // Reactivated, they sign in again, but the old tokens stay dead.
      const back = await api('PATCH', `/api/users/${target.id}/`, { token: staffToken, json: { is_active: true } });
      expect(back.status, back.text).toBe(200);
      const again = await apiLogin(target.username);
      expect((await api('GET', '/auth/me/', { token: again.access })).status).toBe(200);
      expectRefreshRefused(await refreshAnswer(pair.refresh));
      expect((await userinfo(oauth.access_token)).status).toBe(401);
    });

    it('a deactivated staff member loses staff access at once', async () => {
      const member = await fx.server.latchkey.users.create({ username: unique('exstaff'), email: null, passwordHash, isStaff: true });
      const { access } = await apiLogin(member.username);
      expect((await api('GET', '/api/users/', { token: access })).status).toBe(200);
      expect((await api('PATCH', `/api/users/${member.id}/`, { token: superToken, json: { is_active: false } })).status).toBe(200);
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
        const answer = await api(method, `/api/users/${root.id}/`, { token: staffToken, ...(json ? { json } : {}) });
        expect(answer.status, `${method} ${JSON.stringify(json)}: ${answer.text}`).toBe(403);
        expect(answer.json['error']).toBe('permission_denied');
      }
      expect(await row(root.id)).toEqual(before);
      expect((await tokenAnswer(root.username, ATTACKER_PASSWORD)).status).toBe(401);

      const renamed = await api('PATCH', `/api/users/${root.id}/`, { token: superToken, json: { first_name: 'Trusted' } });
      expect(renamed.status, renamed.text).toBe(200);
      expect((await api('DELETE', `/api/users/${root.id}/`, { token: superToken })).status).toBe(204);
    });
  });

  describe('with ALLOW_REGISTRATION=false', () => {
    let closed: TestServer;
    let closedStaffToken: string;

    beforeAll(async () => {
      closed = await startTestServer(fx.backend, { ALLOW_REGISTRATION: 'false' });
      const member = await closed.latchkey.users.create({
        username: 'closedstaff',
        email: null,
        passwordHash: await closed.latchkey.hasher.hash(PASSWORD),
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
      const before = await closed.latchkey.users.count();
      const answer = await register();
      expect(answer.status).toBe(403);
      expect(((await answer.json()) as Json)['error']).toBe('permission_denied');
      expect(await closed.latchkey.users.count()).toBe(before);
    });

    it('refuses a plain user too', async () => {
      const plain = await closed.latchkey.users.create({
        username: unique('plain'),
        email: null,
        passwordHash: await closed.latchkey.hasher.hash(PASSWORD),
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
      expect(await closed.latchkey.users.findById(user.id)).toBeDefined();
    });
  });
});
