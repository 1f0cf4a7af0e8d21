import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeOnBackends } from '../helpers/fixture.js';
import { DJANGO_PYTHON, seedDjangoSite, type DjangoSite } from '../helpers/django.js';
import { callApi } from '../helpers/http.js';
import { runProcess } from '../helpers/process.js';

/**
 * The side-by-side check of issue 16: the same requests to the real seed services (Django 3.2,
 * django-oauth-toolkit 1.7, DRF 3.14, simplejwt 5.2: test/fixtures/django/seedapi, through
 * Django's test Client by parity.py) and to Latchkey after `import django` of the same site,
 * so the users and clients are the same. Each case compares the status and the keys a
 * DRF/simplejwt/DOT client reads. A case either matches, or is one of the deliberate
 * differences (DELIBERATE, mirrored by the table in README's "Moving from Django"), where the
 * test asserts Latchkey's own answer.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const PARITY = path.resolve(import.meta.dirname, '../fixtures/django/parity.py');

interface ParityRequest {
  method: string;
  /** `{id:<username>}` is that user's id on each side. */
  path: string;
  form?: Record<string, string>;
  json?: Record<string, unknown>;
  headers?: Record<string, string>;
  /** Signed in at /api/token/ first, on each side. */
  bearer?: { username: string; password: string };
  /**
   * A token request sent first (OAuth's form, or simplejwt's JSON); its access and refresh
   * token replace `{token}` and `{refresh}` in `form` or `json`.
   */
  obtain?: { path: string; form?: Record<string, string>; json?: Record<string, unknown>; headers?: Record<string, string> };
  /** Sent once before the answer that counts: a replay. */
  twice?: boolean;
}

interface Seen {
  status: number;
  body: unknown;
}

/**
 * What a client of the Django service reads: `value` keys must be equal on both sides,
 * `present` keys only present (tokens, ids, times), `array` a bare JSON array.
 */
interface Reads {
  value?: string[];
  present?: string[];
  array?: boolean;
}

interface ParityCase {
  name: string;
  request: ParityRequest;
  reads: Reads;
}

/** The deliberate differences: route, Django's answer, Latchkey's, why (README's table). */
interface Deliberate {
  route: string;
  django: string;
  latchkey: string;
  why: string;
  /** Latchkey's answer, asserted. */
  expect: (seen: Seen) => void;
}

const ALICE = { username: 'alice', password: "Alice's pässwörd 1" };
const ROOT_USER = { username: 'root', password: 'root superuser 10' };
const CAROL = { username: 'carol', password: 'carol argon2id 3' };
const field = (name: string) => `${name}`;
const MOBILE_LOGIN = { path: '/o/token/', form: { grant_type: 'password', username: 'alice', password: ALICE.password }, headers: { authorization: '{basic:Legacy Mobile}' } };

const CASES: ParityCase[] = [
  { name: 'token: good password', request: { method: 'POST', path: '/api/token/', json: ALICE }, reads: { present: ['access', 'refresh'] } },
  { name: 'token: wrong password', request: { method: 'POST', path: '/api/token/', json: { username: 'alice', password: 'wrong' } }, reads: { value: ['detail'] } },
  { name: 'token: unknown user', request: { method: 'POST', path: '/api/token/', json: { username: 'nobody', password: 'wrong' } }, reads: { value: ['detail'] } },
  { name: 'token: inactive user', request: { method: 'POST', path: '/api/token/', json: { username: 'ivan', password: 'ivan inactive 8' } }, reads: { value: ['detail'] } },
  { name: 'token: missing password', request: { method: 'POST', path: '/api/token/', json: { username: 'alice' } }, reads: { value: [field('password')] } },
  { name: 'token: missing username', request: { method: 'POST', path: '/api/token/', json: { password: 'x' } }, reads: { value: [field('username')] } },
  { name: 'refresh: garbage', request: { method: 'POST', path: '/api/token/refresh/', json: { refresh: 'not-a-token' } }, reads: { value: ['detail', 'code'] } },
  { name: 'refresh: missing field', request: { method: 'POST', path: '/api/token/refresh/', json: {} }, reads: { value: ['refresh'] } },
  { name: 'verify: garbage', request: { method: 'POST', path: '/api/token/verify/', json: { token: 'not-a-token' } }, reads: { value: ['detail', 'code'] } },
  { name: 'verify: missing field', request: { method: 'POST', path: '/api/token/verify/', json: {} }, reads: { value: ['token'] } },
  { name: 'auth/me: signed in', request: { method: 'GET', path: '/auth/me/', bearer: ALICE }, reads: { value: ['username', 'first_name', 'last_name', 'is_staff', 'is_active'], present: ['id', 'email'] } },
  { name: 'auth/me: no credentials', request: { method: 'GET', path: '/auth/me/' }, reads: { value: ['detail'] } },
  { name: 'api/auth/me: signed in', request: { method: 'GET', path: '/api/auth/me/', bearer: ALICE }, reads: { value: ['username'], present: ['id'] } },
  { name: 'auth/me: garbage bearer', request: { method: 'GET', path: '/auth/me/', headers: { authorization: 'Bearer not-a-token' } }, reads: {} },
  { name: 'users: own record', request: { method: 'GET', path: '/api/users/{id:alice}/', bearer: ALICE }, reads: { value: ['username', 'first_name', 'last_name'], present: ['id', 'email', 'date_joined'] } },
  { name: 'users: staff lists, no paging parameters', request: { method: 'GET', path: '/api/users/', bearer: ROOT_USER }, reads: { array: true } },
  { name: 'users: staff reads another', request: { method: 'GET', path: '/api/users/{id:bob}/', bearer: ROOT_USER }, reads: { value: ['username', 'email'] } },
  { name: 'users: patch own name', request: { method: 'PATCH', path: '/api/users/{id:alice}/', bearer: ALICE, json: { first_name: 'Alicia' } }, reads: { value: ['first_name', 'username'] } },
  { name: 'users: other user', request: { method: 'GET', path: '/api/users/{id:bob}/', bearer: ALICE }, reads: {} },
  { name: 'users: non-staff lists', request: { method: 'GET', path: '/api/users/', bearer: ALICE }, reads: {} },
  { name: 'users: non-staff sets is_staff', request: { method: 'PATCH', path: '/api/users/{id:alice}/', bearer: ALICE, json: { is_staff: true } }, reads: {} },
  { name: 'users: list without credentials', request: { method: 'GET', path: '/api/users/' }, reads: { value: ['detail'] } },
  { name: 'users: unknown id as staff', request: { method: 'GET', path: '/api/users/999999/', bearer: ROOT_USER }, reads: { value: ['detail'] } },
  {
    name: 'users: create',
    request: { method: 'POST', path: '/api/users/', json: { username: 'newcomer', password: 'a long new password 12', email: 'newcomer@example.com' } },
    reads: { value: ['username', 'email'], present: ['id'] },
  },
  { name: 'users: create with nothing', request: { method: 'POST', path: '/api/users/', json: {} }, reads: { value: ['username', 'password', 'email'] } },
  { name: 'users: create a taken username', request: { method: 'POST', path: '/api/users/', json: { username: 'bob', password: 'a long new password 12', email: 'other-bob@example.com' } }, reads: {} },
  { name: 'users: anonymous create with is_staff', request: { method: 'POST', path: '/api/users/', json: { username: 'sneaky', password: 'a long new password 12', email: 'sneaky@example.com', is_staff: true } }, reads: {} },
  { name: 'login: email and password', request: { method: 'POST', path: '/users/login/', form: { email: 'bob@example.com', password: 'bob sha1 secret 2' } }, reads: { value: ['token_type'], present: ['access_token', 'refresh_token', 'expires_in', 'scope'] } },
  { name: 'login: username and password', request: { method: 'POST', path: '/users/login/', form: { username: 'carol', password: 'carol argon2id 3' } }, reads: { value: ['token_type'], present: ['access_token', 'refresh_token'] } },
  { name: 'login: wrong password', request: { method: 'POST', path: '/users/login/', form: { email: 'bob@example.com', password: 'wrong' } }, reads: { value: ['error'] } },
  {
    name: 'register: form',
    request: { method: 'POST', path: '/users/register/', form: { username: 'formuser', email: 'formuser@example.com', password: 'a long new password 12', confirm_password: 'a long new password 12' } },
    reads: { value: ['username'], present: ['id'] },
  },
  {
    name: 'register: passwords differ',
    request: { method: 'POST', path: '/users/register/', form: { username: 'formuser2', password: 'a long new password 12', confirm_password: 'another long password 13' } },
    reads: { present: ['error'] },
  },
  {
    name: 'dot: password grant',
    request: { method: 'POST', path: '/o/token/', form: { grant_type: 'password', username: 'alice', password: ALICE.password }, headers: { authorization: '{basic:Legacy Mobile}' } },
    reads: { value: ['token_type'], present: ['access_token', 'refresh_token', 'expires_in', 'scope'] },
  },
  {
    name: 'dot: introspect own token',
    request: { method: 'POST', path: '/o/introspect/', form: { token: '{token}' }, headers: { authorization: '{basic:Legacy Mobile}' }, obtain: MOBILE_LOGIN },
    reads: { value: ['active', 'username'], present: ['client_id', 'exp', 'scope'] },
  },
  {
    name: 'dot: revoke own token',
    request: { method: 'POST', path: '/o/revoke_token/', form: { token: '{token}' }, headers: { authorization: '{basic:Legacy Mobile}' }, obtain: MOBILE_LOGIN },
    reads: {},
  },
  {
    name: 'dot: refresh',
    request: { method: 'POST', path: '/o/token/', form: { grant_type: 'refresh_token', refresh_token: '{refresh}' }, headers: { authorization: '{basic:Legacy Mobile}' }, obtain: MOBILE_LOGIN },
    reads: { value: ['token_type'], present: ['access_token', 'refresh_token'] },
  },
  { name: 'dot: authorize without parameters', request: { method: 'GET', path: '/o/authorize/' }, reads: {} },
  { name: 'dot: token endpoint, unknown grant', request: { method: 'POST', path: '/o/token/', form: { grant_type: 'nonsense' }, headers: { authorization: '{basic:Legacy Mobile}' } }, reads: { value: ['error'] } },
  { name: 'dot: token endpoint without client', request: { method: 'POST', path: '/o/token/', form: { grant_type: 'password', username: 'alice', password: 'x' } }, reads: { value: ['error'] } },
  { name: 'dot: revoke_token without client', request: { method: 'POST', path: '/o/revoke_token/', form: { token: 'x' } }, reads: { value: ['error'] } },
  { name: 'dot: introspect without credentials', request: { method: 'POST', path: '/o/introspect/', form: { token: 'x' } }, reads: {} },
  // Last: they change carol's password and spend alice's refresh token.
  { name: 'users: own password without current_password', request: { method: 'PATCH', path: '/api/users/{id:carol}/', bearer: CAROL, json: { password: 'a new long password 14' } }, reads: {} },
  { name: 'users: create with a common password', request: { method: 'POST', path: '/api/users/', json: { username: 'weakling', password: 'password', email: 'weakling@example.com' } }, reads: {} },
  {
    name: 'refresh: the same refresh token twice',
    request: { method: 'POST', path: '/api/token/refresh/', json: { refresh: '{refresh}' }, obtain: { path: '/api/token/', json: ALICE }, twice: true },
    reads: { present: ['access'] },
  },
];

/** Latchkey's answer: this status, with these keys in the body. */
const answered =
  (status: number, ...keys: string[]) =>
  (seen: Seen): void => {
    expect(seen.status).toBe(status);
    for (const key of keys) expect(seen.body).toHaveProperty(key);
  };

const DELIBERATE: Record<string, Deliberate> = {
  'users: staff lists, no paging parameters': {
    route: 'GET /api/users/ without `page`/`page_size`',
    django: 'a bare JSON array of every account (the viewset had no pagination)',
    latchkey: "DRF's page `{count, next, previous, results}`, 100 at most",
    why: 'an unbounded list is a denial of service and a bulk export for one stolen staff token; one answer shape whatever the query',
    expect: (s) => {
      expect(s.status).toBe(200);
      expect(s.body).toMatchObject({ count: expect.any(Number), results: expect.any(Array) });
    },
  },
  'users: other user': {
    route: 'GET /api/users/<id>/ (someone else, not staff)',
    django: "200 with the other person's record",
    latchkey: '404 `not_found`',
    why: "ids cannot be probed: people see only themselves, staff everyone",
    expect: (s) => expect(s.status).toBe(404),
  },
  'users: non-staff lists': {
    route: 'GET /api/users/ (not staff)',
    django: 'every account',
    latchkey: '403 `permission_denied`',
    why: 'the list of accounts is for staff',
    expect: (s) => expect(s.status).toBe(403),
  },
  'users: non-staff sets is_staff': {
    route: 'PATCH /api/users/<id>/ with `is_staff` (not staff)',
    django: '403',
    latchkey: '403 `permission_denied`',
    why: 'the same refusal; listed because Latchkey also refuses `is_superuser` from non-superusers',
    expect: (s) => expect(s.status).toBe(403),
  },
  'users: anonymous create with is_staff': {
    route: 'POST /api/users/ with `is_staff` (anonymous)',
    django: '403',
    latchkey: '403 `permission_denied`',
    why: 'privileged fields only from staff (superuser for `is_superuser`)',
    expect: (s) => expect(s.status).toBe(403),
  },
  'users: create a taken username': {
    route: 'POST /api/users/ with a taken username',
    django: '400 `{"username": ["A user with that username already exists."]}`',
    latchkey: '409 `conflict` with the same message under `username`',
    why: 'a conflict is not a malformed request; the field list is there for forms',
    expect: (s) => expect(s.status).toBe(409),
  },
  'dot: authorize without parameters': {
    route: 'GET /o/authorize/ without parameters',
    django: '302 to the login page',
    latchkey: '400 `invalid_request` page',
    why: 'the request is checked before anyone is asked to sign in (RFC 6749 4.1.2.1: a bad client or redirect URI is never redirected to)',
    expect: (s) => expect(s.status).toBe(400),
  },
  'users: own password without current_password': {
    route: 'PATCH /api/users/<own id>/ with `password` (or `email`), no `current_password`',
    django: '200, changed',
    latchkey: '400, `current_password` under its field (and `otp` when two-factor is on)',
    why: 'a stolen token must not take the account over',
    expect: answered(400, 'current_password'),
  },
  'users: create with a common password': {
    route: 'POST /api/users/ with a short or common password',
    django: '201 (the serializer ran no password validators)',
    latchkey: '400, the reason under `password`',
    why: 'the password policy (at least 8 characters, not one of the ~49,000 most common) holds at every door',
    expect: answered(400, 'password'),
  },
  'refresh: the same refresh token twice': {
    route: 'POST /api/token/refresh/ with a refresh token used before',
    django: 'a new `access` (simplejwt: ROTATE_REFRESH_TOKENS off); the refresh token works until it expires',
    latchkey: '401 `token_not_valid`, and every token of that login is revoked; `API_ROTATE_REFRESH_TOKENS=false` answers as Django',
    why: 'reuse detection (RFC 9700 4.14): a refresh token seen twice was stolen',
    expect: answered(401, 'code'),
  },
  'dot: introspect without credentials': {
    route: 'POST /o/introspect/ without client credentials',
    django: '403 (no body)',
    latchkey: '401 `invalid_client` (as DOT answers at /o/token/ and /o/revoke_token/)',
    why: "RFC 7662: introspection needs the caller's client authentication, answered as RFC 6749 says",
    expect: (s) => expect(s.status).toBe(401),
  },
};

/** Gaps of issue 16 this branch has not closed yet: asserted to still differ, so closing one fails here until it is moved to CASES' matches. */
const NOT_YET = new Set<string>([]);

function withIds(text: string, ids: Map<string, string>): string {
  return text.replace(/\{id:([^}]+)\}/g, (_, name: string) => ids.get(name) ?? '0');
}

/** Does Latchkey's answer give a client of Django's what it reads? Returns what differs. */
function differences(reads: Reads, django: Seen, latchkey: Seen): string[] {
  const out: string[] = [];
  if (django.status !== latchkey.status) out.push(`status ${django.status} vs ${latchkey.status}`);
  if (reads.array && (!Array.isArray(django.body) || !Array.isArray(latchkey.body))) out.push('not both bare arrays');
  const dj = (django.body ?? {}) as Record<string, unknown>;
  const lk = (latchkey.body ?? {}) as Record<string, unknown>;
  for (const key of reads.present ?? []) {
    if (!(key in dj)) out.push(`Django lacks ${key}`);
    if (!(key in lk)) out.push(`Latchkey lacks ${key}`);
  }
  for (const key of reads.value ?? []) {
    if (JSON.stringify(dj[key]) !== JSON.stringify(lk[key])) out.push(`${key}: ${JSON.stringify(dj[key])} vs ${JSON.stringify(lk[key])}`);
  }
  return out;
}

describeOnBackends('Django parity (%s)', (fx) => {
  let site: DjangoSite;
  const djangoSeen: Seen[] = [];
  const latchkeySeen: Seen[] = [];
  let requests: ParityRequest[] = [];

  async function sendToLatchkey(request: ParityRequest, ids: Map<string, string>): Promise<Seen> {
    if (request.twice) await sendOnce(request, ids);
    return (await sendOnce(request, ids, { reuse: request.twice === true })).seen;
  }

  /** The tokens obtained for a request, kept for its replay. */
  const obtained = new Map<ParityRequest, Record<string, string>>();

  async function sendOnce(request: ParityRequest, ids: Map<string, string>, { reuse = false } = {}): Promise<{ seen: Seen }> {
    let token: string | undefined;
    if (request.bearer) token = String((await fx.api('POST', '/api/token/', { json: request.bearer })).json['access']);
    if (request.obtain) {
      let swap = reuse ? obtained.get(request) : undefined;
      if (!swap) {
        const how = request.obtain.json ? { json: request.obtain.json } : { form: request.obtain.form ?? {} };
        const got = await callApi(fx.url(), 'POST', request.obtain.path, { ...how, authorization: request.obtain.headers?.['authorization'] });
        swap = { '{token}': String(got.json['access_token'] ?? got.json['access'] ?? ''), '{refresh}': String(got.json['refresh_token'] ?? got.json['refresh'] ?? '') };
        obtained.set(request, swap);
      }
      const swapped = (body: Record<string, unknown> | undefined) => (body ? Object.fromEntries(Object.entries(body).map(([k, v]) => [k, typeof v === 'string' ? (swap[v] ?? v) : v])) : undefined);
      const form = swapped(request.form) as Record<string, string> | undefined;
      const json = swapped(request.json);
      request = { ...request, ...(form ? { form } : {}), ...(json ? { json } : {}) };
    }
    const target = withIds(request.path, ids);
    const answer = await callApi(fx.url(), request.method, target, {
      token,
      ...(request.headers?.['authorization'] ? { authorization: request.headers['authorization'] } : {}),
      ...(request.json ? { json: request.json } : {}),
      ...(request.form ? { form: request.form } : {}),
    });
    let body: unknown = null;
    try {
      body = answer.text ? JSON.parse(answer.text) : null;
    } catch {
      body = null;
    }
    return { seen: { status: answer.status, body } };
  }

  beforeAll(async () => {
    site = await seedDjangoSite(fx.backend);
    const imported = await runProcess(process.execPath, [MAIN, 'import', 'django', '--from', site.from, '--user-table', site.manifest.user_table, '--json'], {
      env: { ...process.env, DATABASE_URL: fx.server.db.url, BCRYPT_COST: '10' },
      cwd: ROOT,
    });
    expect(imported.code, imported.stderr).toBe(0);

    // Django first (its own database), each request as its client would send it.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-parity-'));
    const file = path.join(dir, 'requests.json');
    // The same client credentials on both sides (the import kept them).
    const basic = (name: string) => {
      const app = site.manifest.applications.find((a) => a.name === name);
      return `Basic ${Buffer.from(`${encodeURIComponent(app?.client_id ?? '')}:${encodeURIComponent(app?.client_secret ?? '')}`).toString('base64')}`;
    };
    requests = CASES.map((c) => JSON.parse(JSON.stringify(c.request).replace(/\{basic:([^}]+)\}/g, (_, name: string) => basic(name))) as ParityRequest);
    fs.writeFileSync(file, JSON.stringify(requests));
    const ran = await runProcess(DJANGO_PYTHON, [PARITY, file], {
      env: { ...process.env, LATCHKEY_DJANGO_DATABASE: site.backend === 'sqlite' ? `sqlite:${site.from}` : site.from, PYTHONDONTWRITEBYTECODE: '1' },
      cwd: path.dirname(PARITY),
    });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(ran.code, ran.stderr).toBe(0);
    djangoSeen.push(...(JSON.parse(ran.stdout.trim().split('\n').pop() ?? '[]') as Seen[]));

    const ids = new Map<string, string>();
    for (const name of ['alice', 'bob', 'carol']) {
      const user = await fx.server.latchkey.storage.users.findByLogin(name);
      if (user) ids.set(name, String(user.id));
    }
    for (const request of requests) latchkeySeen.push(await sendToLatchkey(request, ids));
  }, 180_000);
  afterAll(async () => {
    await site?.drop();
  });

  // Not a side-by-side case: the fixture gives the client_credentials application a DOT-2-style
  // hashed secret, which DOT 1.7 itself cannot read (it answers invalid_client).
  it('answers client_credentials with its scope, as DOT does', async () => {
    const app = site.manifest.applications.find((a) => a.grant === 'client-credentials');
    const authorization = `Basic ${Buffer.from(`${encodeURIComponent(app?.client_id ?? '')}:${encodeURIComponent(app?.client_secret ?? '')}`).toString('base64')}`;
    const answer = await callApi(fx.url(), 'POST', '/o/token/', { form: { grant_type: 'client_credentials' }, authorization });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json).toMatchObject({ access_token: expect.any(String), token_type: 'Bearer', scope: expect.any(String) });
    // Negative control: a wrong secret gets no token.
    const wrong = await callApi(fx.url(), 'POST', '/o/token/', { form: { grant_type: 'client_credentials' }, authorization: `Basic ${Buffer.from(`${app?.client_id ?? ''}:wrong`).toString('base64')}` });
    expect(wrong.status).toBe(401);
    expect(wrong.json['error']).toBe('invalid_client');
  });

  it('every deliberate difference is a case, and Latchkey answers it as the table says', () => {
    for (const name of Object.keys(DELIBERATE)) expect(CASES.some((c) => c.name === name), name).toBe(true);
    CASES.forEach((c, i) => {
      const deliberate = DELIBERATE[c.name];
      if (deliberate) deliberate.expect(latchkeySeen[i] as Seen);
    });
  });

  it('every other case answers as the Django service did', () => {
    let matched = 0;
    const report: string[] = [];
    CASES.forEach((c, i) => {
      const found = differences(c.reads, djangoSeen[i] as Seen, latchkeySeen[i] as Seen);
      if (found.length === 0) matched++;
      else report.push(`${DELIBERATE[c.name] ? 'deliberate' : NOT_YET.has(c.name) ? 'not yet' : 'GAP'}: ${c.name}: ${found.join('; ')}`);
    });
    console.log(`Django parity (${fx.backend}): ${matched} of ${CASES.length} requests matched\n${report.join('\n')}`);
    const unexpected = CASES.filter((c, i) => !DELIBERATE[c.name] && !NOT_YET.has(c.name) && differences(c.reads, djangoSeen[i] as Seen, latchkeySeen[i] as Seen).length > 0);
    expect(unexpected.map((c) => c.name)).toEqual([]);
    const closed = CASES.filter((c, i) => NOT_YET.has(c.name) && differences(c.reads, djangoSeen[i] as Seen, latchkeySeen[i] as Seen).length === 0);
    expect(closed.map((c) => c.name)).toEqual([]);
  });
});
