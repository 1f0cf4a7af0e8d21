/**
 * Brute-force limits over real HTTP: every door that checks a password (the login page, the
 * admin login, /api/token/, /users/login/ and grant_type=password at /o/token) shares one
 * counter per account and one per client IP, kept in the database so that it survives a
 * restart and holds across processes. Locked means 429 with Retry-After, even for the right
 * password, and unknown usernames lock exactly like real ones.
 */
import { randomBytes } from 'node:crypto';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { User } from '../../src/storage/users.js';
import type { RunningLatchkey } from '../../src/start.js';
import { adminLogin } from '../helpers/admin.js';
import { formOf, UserAgent } from '../helpers/browserless.js';
import { freshDatabase, type TestDatabase } from '../helpers/database.js';
import { BACKENDS } from '../helpers/env.js';
import { readAnswer, type Answer } from '../helpers/http.js';
import { authorizationRequest, discover, makeClient, makeUser, PASSWORD } from '../helpers/rp.js';
import { startOnDatabase, startTestServer, type TestServer } from '../helpers/server.js';
import { describeOnBackends } from '../helpers/fixture.js';

const WRONG = 'certainly not the passphrase';
const LOCK_MESSAGE = 'Too many failed sign-in attempts';

type Door = 'login page' | '/api/token/' | '/users/login/' | 'password grant' | 'admin login';
const DOORS: Door[] = ['login page', '/api/token/', '/users/login/', 'password grant', 'admin login'];

/** One answer from a password door; `message` is the login page's alert (pages only). */
interface Attempt extends Answer {
  message: string | null;
}

const unknownName = () => `nobody_${randomBytes(5).toString('hex')}`;

function alertOf(html: string): string | null {
  return /<p class="alert" role="alert">([^<]*)<\/p>/.exec(html)?.[1]?.trim() ?? null;
}

function expectRetryAfter(headers: Headers, max = Infinity): number {
  const value = headers.get('retry-after');
  expect(value, 'Retry-After header').toMatch(/^\d+$/);
  const seconds = Number(value);
  expect(seconds).toBeGreaterThan(0);
  expect(seconds).toBeLessThanOrEqual(max);
  return seconds;
}

/** The five password doors of one running Latchkey. */
async function doorsOf(running: RunningLatchkey) {
  const { url, issuer, latchkey } = running;
  const web = await makeClient(latchkey, { name: 'Throttle web app' });
  const webConfig: oidc.Configuration = await discover(issuer, web.client.clientId, web.clientSecret);
  const legacy = await makeClient(latchkey, { name: 'Throttle legacy app', grantTypes: ['password', 'refresh_token'], redirectUris: [] });
  const basic = `Basic ${Buffer.from(`${legacy.client.clientId}:${legacy.clientSecret}`).toString('base64')}`;

  async function loginPage(username: string, password: string): Promise<Attempt> {
    const agent = new UserAgent();
    const { url: authUrl } = await authorizationRequest(webConfig);
    const { response, url: at } = await agent.follow(authUrl);
    const form = formOf(await response.text(), '/login');
    const answer = await readAnswer(await agent.postForm(new URL(form.action, at), { csrf: form.csrf, username, password }));
    return { ...answer, message: alertOf(answer.text) };
  }

  async function attempt(door: Door, username: string, password: string): Promise<Attempt> {
    switch (door) {
      case 'login page':
        return loginPage(username, password);
      case 'admin login': {
        const { response, html } = await adminLogin(url, new UserAgent(), username, password);
        return { status: response.status, headers: response.headers, text: html, json: {}, message: alertOf(html) };
      }
      case '/api/token/': {
        const res = await fetch(`${url}/api/token/`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify({ username, password }),
        });
        return { ...(await readAnswer(res)), message: null };
      }
      case '/users/login/': {
        const res = await fetch(`${url}/users/login/`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
          body: new URLSearchParams({ username, password }).toString(),
        });
        return { ...(await readAnswer(res)), message: null };
      }
      case 'password grant': {
        const res = await fetch(`${issuer}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: basic },
          body: new URLSearchParams({ grant_type: 'password', username, password }).toString(),
        });
        return { ...(await readAnswer(res)), message: null };
      }
    }
  }

  /** The status a door answers a right password with (the admin needs a staff member). */
  const okStatus = (door: Door) => (door === 'login page' ? 303 : 200);
  // /users/login/ answers as the password grant behind it did in django-oauth-toolkit.
  const failStatus = (door: Door) => (door === 'password grant' || door === '/users/login/' ? 400 : 401);

  async function expectOk(door: Door, username: string, password = PASSWORD): Promise<Attempt> {
    const answer = await attempt(door, username, password);
    expect(answer.status, `${door} for ${username}: ${answer.text.slice(0, 500)}`).toBe(okStatus(door));
    return answer;
  }

  async function expectFailure(door: Door, username: string, password = WRONG): Promise<Attempt> {
    const answer = await attempt(door, username, password);
    expect(answer.status, `${door} for ${username}: ${answer.text.slice(0, 500)}`).toBe(failStatus(door));
    return answer;
  }

  /** 429 with Retry-After and the door's lockout answer; never a token or a session. */
  async function expectLocked(door: Door, username: string, password = PASSWORD): Promise<Attempt> {
    const answer = await attempt(door, username, password);
    expect(answer.status, `${door} for ${username}: ${answer.text.slice(0, 500)}`).toBe(429);
    expectRetryAfter(answer.headers);
    expect(answer.text).not.toMatch(/access_token|refresh_token|"access"|"refresh"/);
    if (door === 'login page' || door === 'admin login') {
      expect(answer.message).toContain(LOCK_MESSAGE);
      expect(answer.text).toContain('name="password"');
    } else if (door === 'password grant') {
      expect(answer.json['error']).toEqual(expect.any(String));
    } else {
      expect(answer.json).toMatchObject({ error: 'too_many_requests' });
    }
    return answer;
  }

  return { attempt, expectOk, expectFailure, expectLocked };
}

type Doors = Awaited<ReturnType<typeof doorsOf>>;

/** POST /api/token/ on any running Latchkey. */
async function apiToken(base: string, username: string, password: string): Promise<Answer> {
  return readAnswer(
    await fetch(`${base}/api/token/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ username, password }),
    }),
  );
}

describeOnBackends('brute-force limits per account (%s)', { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', LOGIN_MAX_FAILURES_PER_IP: '1000' }, (fx) => {
  let doors: Doors;

  beforeAll(async () => {
    doors = await doorsOf(fx.server);
  });

  /** A staff member (so the admin login can succeed too) with PASSWORD. */
  const staffUser = () => makeUser(fx.server.latchkey, { isStaff: true });

  describe.each(DOORS)('at the %s', (door) => {
    it('answers 429 with Retry-After to the 4th attempt after 3 wrong passwords, even with the right password', async () => {
      const user = await staffUser();
      // Positive control: the right password works at this door before any failure.
      await doors.expectOk(door, user.username);
      for (let i = 0; i < 3; i++) await doors.expectFailure(door, user.username);
      await doors.expectLocked(door, user.username, PASSWORD);
      // Still locked, with a wrong password too, and at every other door.
      await doors.expectLocked(door, user.username, WRONG);
      for (const other of DOORS) await doors.expectLocked(other, user.username);
    });
  });

  it('counts failures at one door against the others', async () => {
    // 3 failures at /api/token/ lock the login page (and the admin login).
    const a = await staffUser();
    for (let i = 0; i < 3; i++) await doors.expectFailure('/api/token/', a.username);
    await doors.expectLocked('login page', a.username);
    await doors.expectLocked('admin login', a.username);

    // One failure at each of three different doors adds up too.
    const b = await staffUser();
    await doors.expectFailure('login page', b.username);
    await doors.expectFailure('/users/login/', b.username);
    await doors.expectFailure('password grant', b.username);
    await doors.expectLocked('/api/token/', b.username);
    await doors.expectLocked('admin login', b.username);
  });

  it('counts and locks unknown usernames exactly like real accounts', async () => {
    // Below the limit the failures look the same at every door.
    const real = await staffUser();
    const ghost = unknownName();
    const pageReal = await doors.expectFailure('login page', (await staffUser()).username);
    const pageGhost = await doors.expectFailure('login page', unknownName());
    expect(pageGhost.message).toBe(pageReal.message);
    for (const door of ['/api/token/', '/users/login/', 'password grant'] as const) {
      const realFailure = await doors.expectFailure(door, real.username);
      const ghostFailure = await doors.expectFailure(door, ghost);
      expect(ghostFailure.text).toBe(realFailure.text);
    }
    // Three failures each: both are locked, and every door answers them identically.
    for (const door of DOORS) {
      const realLocked = await doors.expectLocked(door, real.username);
      const ghostLocked = await doors.expectLocked(door, ghost);
      expect(ghostLocked.status).toBe(realLocked.status);
      if (door === 'login page' || door === 'admin login') expect(ghostLocked.message).toBe(realLocked.message);
      else expect(ghostLocked.text).toBe(realLocked.text);
      expect(ghostLocked.headers.get('content-type')).toBe(realLocked.headers.get('content-type'));
    }

    // Exactly three failures lock an unknown name, as for a real account.
    const other = unknownName();
    for (let i = 0; i < 3; i++) await doors.expectFailure('/api/token/', other);
    await doors.expectLocked('/api/token/', other);
  });

  it('answers a locked account and a locked unknown name alike whatever is sent as the password (even nothing)', async () => {
    const real = await staffUser();
    const ghost = unknownName();
    for (let i = 0; i < 3; i++) {
      await doors.expectFailure('/api/token/', real.username);
      await doors.expectFailure('/api/token/', ghost);
    }
    // Whatever the password field holds, both are locked: no probe tells them apart.
    for (const password of [PASSWORD, WRONG, '', ' ']) {
      for (const door of ['/api/token/', '/users/login/', 'password grant', 'login page'] as const) {
        const forReal = await doors.attempt(door, real.username, password);
        const forGhost = await doors.attempt(door, ghost, password);
        const label = `${door} with password ${JSON.stringify(password)}`;
        // A blank field at /api/token/ is simplejwt's 400 before any account is looked up: the same for both.
        const expected = door === '/api/token/' && password === '' ? 400 : 429;
        expect(forReal.status, `${label} (real account)`).toBe(expected);
        expect(forGhost.status, `${label} (unknown name)`).toBe(expected);
        if (door === 'login page') expect(forGhost.message, label).toBe(forReal.message);
        else expect(forGhost.text, label).toBe(forReal.text);
      }
    }
  });

  it('counts parallel guesses: of 12 simultaneous wrong passwords at most 3 are checked, the rest get 429', async () => {
    const user = await staffUser();
    const answers = await Promise.all(Array.from({ length: 12 }, () => doors.attempt('/api/token/', user.username, WRONG)));
    const statuses = answers.map((a) => a.status).sort();
    const checked = statuses.filter((s) => s === 401).length;
    expect(statuses.every((s) => s === 401 || s === 429), statuses.join(',')).toBe(true);
    // Each 401 was a password actually tried: a lock that lets a burst through is no limit.
    expect(checked, `statuses: ${statuses.join(',')}`).toBeLessThanOrEqual(3);
    await doors.expectLocked('/api/token/', user.username);
  });

  it('locks one account, not the IP: another account from the same address still signs in', async () => {
    const victim = await staffUser();
    const bystander = await staffUser();
    for (let i = 0; i < 3; i++) await doors.expectFailure('/api/token/', victim.username);
    await doors.expectLocked('/api/token/', victim.username);
    for (const door of DOORS) await doors.expectOk(door, bystander.username);
    await doors.expectLocked('login page', victim.username);
  });

  it('shares one counter between the username and the email of an account', async () => {
    const user: User = await staffUser();
    const email = user.email!;
    await doors.expectFailure('/api/token/', user.username);
    await doors.expectFailure('login page', email);
    // Another spelling of the same username is the same account.
    await doors.expectFailure('/users/login/', user.username.toUpperCase());
    await doors.expectLocked('/api/token/', email);
    await doors.expectLocked('/api/token/', user.username);
    await doors.expectLocked('login page', email.toUpperCase());
  });

  it('clears the counter after a successful sign-in before the limit', async () => {
    const user = await staffUser();
    await doors.expectFailure('/api/token/', user.username);
    await doors.expectFailure('login page', user.username);
    await doors.expectOk('/users/login/', user.username);
    // Without the reset this would be failures 3 and 4, and the sign-in below a 429.
    await doors.expectFailure('/api/token/', user.username);
    await doors.expectFailure('password grant', user.username);
    await doors.expectOk('login page', user.username);
    // The counter starts again from zero: three more failures lock it.
    for (let i = 0; i < 3; i++) await doors.expectFailure('/api/token/', user.username);
    await doors.expectLocked('/api/token/', user.username);
  });

  it('records the lockout in the audit log, readable by staff at /api/audit/?event=login.lockout', async () => {
    const user = await staffUser();
    for (let i = 0; i < 3; i++) await doors.expectFailure('/api/token/', user.username);
    await doors.expectLocked('/api/token/', user.username);

    const reader = await staffUser();
    const login = await apiToken(fx.server.url, reader.username, PASSWORD);
    expect(login.status).toBe(200);
    const res = await readAnswer(
      await fetch(`${fx.server.url}/api/audit/?event=login.lockout&page_size=100`, {
        headers: { authorization: `Bearer ${String(login.json['access'])}`, accept: 'application/json' },
      }),
    );
    expect(res.status, res.text).toBe(200);
    const results = res.json['results'] as Array<Record<string, unknown>>;
    expect(results.length).toBeGreaterThan(0);
    expect(results.every((e) => e['event'] === 'login.lockout')).toBe(true);
    const mine = results.filter((e) => e['actor'] === user.username);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ event: 'login.lockout', actor_user_id: null, details: { via: 'api_token', locked: ['account'] } });
    expect(mine[0]!['ip']).toEqual(expect.stringMatching(/127\.0\.0\.1|::1/));
    expect(res.text).not.toContain(WRONG);
    expect(res.text).not.toContain(PASSWORD);

    // The refused attempt while locked is recorded too.
    const throttled = await readAnswer(
      await fetch(`${fx.server.url}/api/audit/?event=login.throttled&page_size=100`, {
        headers: { authorization: `Bearer ${String(login.json['access'])}`, accept: 'application/json' },
      }),
    );
    expect((throttled.json['results'] as Array<Record<string, unknown>>).some((e) => e['actor'] === user.username)).toBe(true);
  });
});

describeOnBackends('brute-force limits per IP (%s)', { LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000', LOGIN_MAX_FAILURES_PER_IP: '5' }, (fx) => {
  let doors: Doors;

  beforeAll(async () => {
    doors = await doorsOf(fx.server);
  });

  it('locks the address for everyone after 5 failures spread over 5 unknown usernames', async () => {
    const valid = await makeUser(fx.server.latchkey, { isStaff: true });
    for (let i = 0; i < 4; i++) await doors.expectFailure(DOORS[i % 4]!, unknownName());
    // Four failures: below the limit, a valid user still signs in (which clears no IP counter).
    await doors.expectOk('/api/token/', valid.username);
    await doors.expectFailure('/api/token/', unknownName());
    for (const door of DOORS) await doors.expectLocked(door, valid.username);
    await doors.expectLocked('/api/token/', unknownName());
  });
});

describeOnBackends('brute-force limits behind a trusted proxy (%s)', { TRUST_PROXY: '1', LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000', LOGIN_MAX_FAILURES_PER_IP: '5' }, (fx) => {
  /**
   * /api/token/ as it arrives through a TLS-terminating proxy that appends the address it
   * saw to X-Forwarded-For (nginx's $proxy_add_x_forwarded_for, cloud load balancers): the
   * client may send any X-Forwarded-For of its own, but the last entry is the proxy's.
   */
  async function viaProxy(clientAddress: string, spoofed: string | null, username: string, password: string): Promise<Answer> {
    return readAnswer(
      await fetch(`${fx.server.url}/api/token/`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'x-forwarded-for': spoofed ? `${spoofed}, ${clientAddress}` : clientAddress,
        },
        body: JSON.stringify({ username, password }),
      }),
    );
  }

  it('limits the real client address, not what the client writes into X-Forwarded-For', async () => {
    const valid = await makeUser(fx.server.latchkey);
    const attacker = '203.0.113.7';
    expect((await viaProxy(attacker, null, valid.username, PASSWORD)).status).toBe(200);
    for (let i = 1; i <= 5; i++) {
      const answer = await viaProxy(attacker, `10.66.0.${i}`, unknownName(), WRONG);
      expect(answer.status, answer.text).toBe(401);
    }
    // Five failures from one client: that client is locked out, however it labels itself.
    const locked = await viaProxy(attacker, '10.66.0.99', valid.username, PASSWORD);
    expect(locked.status, locked.text).toBe(429);
    expectRetryAfter(locked.headers);
    expect((await viaProxy(attacker, null, valid.username, PASSWORD)).status).toBe(429);
    // Another client behind the same proxy is not.
    expect((await viaProxy('198.51.100.9', null, valid.username, PASSWORD)).status).toBe(200);
  });
});

describe.each(BACKENDS)('brute-force lockouts expire (%s)', (backend) => {
  let server: TestServer;
  let doors: Doors;

  beforeAll(async () => {
    server = await startTestServer(backend, {
      LOGIN_MAX_FAILURES_PER_ACCOUNT: '3',
      LOGIN_MAX_FAILURES_PER_IP: '1000',
      LOGIN_LOCKOUT_SECONDS: '2',
      LOGIN_FAILURE_WINDOW_SECONDS: '2',
    });
    doors = await doorsOf(server);
  });
  afterAll(async () => server?.stop());

  it('lets the right password in again once the lockout has run out', async () => {
    const user = await makeUser(server.latchkey);
    for (let i = 0; i < 3; i++) await doors.expectFailure('/api/token/', user.username);
    const locked = await doors.expectLocked('/api/token/', user.username);
    expectRetryAfter(locked.headers, 2);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await doors.expectOk('/api/token/', user.username);
    await doors.expectOk('login page', user.username);
  });
});

describe.each(BACKENDS)('brute-force state lives in the database (%s)', (backend) => {
  const env = { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', LOGIN_MAX_FAILURES_PER_IP: '1000' };
  const dbs: TestDatabase[] = [];
  const running: RunningLatchkey[] = [];

  afterAll(async () => {
    for (const r of running) await r.close(1000).catch(() => {});
    for (const db of dbs) await db.drop();
  });

  async function start(db: TestDatabase): Promise<RunningLatchkey> {
    const r = await startOnDatabase(db, env);
    running.push(r);
    return r;
  }

  async function stop(r: RunningLatchkey): Promise<void> {
    running.splice(running.indexOf(r), 1);
    await r.close(1000);
  }

  it('keeps a lockout across a restart', async () => {
    const db = await freshDatabase(backend);
    dbs.push(db);
    const first = await start(db);
    const user = await makeUser(first.latchkey);
    const ghost = unknownName();
    for (let i = 0; i < 3; i++) {
      expect((await apiToken(first.url, user.username, WRONG)).status).toBe(401);
      expect((await apiToken(first.url, ghost, WRONG)).status).toBe(401);
    }
    expect((await apiToken(first.url, user.username, PASSWORD)).status).toBe(429);
    await stop(first);

    const second = await start(db);
    for (const name of [user.username, ghost]) {
      const answer = await apiToken(second.url, name, name === ghost ? WRONG : PASSWORD);
      expect(answer.status, answer.text).toBe(429);
      expectRetryAfter(answer.headers);
    }
    await stop(second);
  });

  it('shares counters between two processes on one database', async () => {
    const db = await freshDatabase(backend);
    dbs.push(db);
    const a = await start(db);
    const b = await start(db);
    const user = await makeUser(a.latchkey);
    const other = await makeUser(a.latchkey);
    // Failures split over both processes add up.
    expect((await apiToken(a.url, other.username, WRONG)).status).toBe(401);
    expect((await apiToken(b.url, other.username, WRONG)).status).toBe(401);
    expect((await apiToken(a.url, other.username, WRONG)).status).toBe(401);
    expect((await apiToken(b.url, other.username, PASSWORD)).status).toBe(429);

    for (let i = 0; i < 3; i++) expect((await apiToken(a.url, user.username, WRONG)).status).toBe(401);
    const answer = await apiToken(b.url, user.username, PASSWORD);
    expect(answer.status, answer.text).toBe(429);
    expectRetryAfter(answer.headers);
    expect((await apiToken(a.url, user.username, PASSWORD)).status).toBe(429);
  });
});

/**
 * Simultaneous attempts: a right password only ever waits for a slot (never counts as a
 * failure, never locks), while wrong guesses still lock exactly at the limit however many
 * arrive at once. Production limits (5 per account, 50 per IP); behind a trusted proxy so
 * that each test speaks from an address of its own.
 */
describeOnBackends('brute-force limits under simultaneous attempts (%s)', { TRUST_PROXY: '1', LOGIN_MAX_FAILURES_PER_ACCOUNT: '5', LOGIN_MAX_FAILURES_PER_IP: '50' }, (fx) => {
  let lastOctet = 0;

  /** A client address no other test uses. */
  const newAddress = () => `198.51.100.${++lastOctet}`;

  /** POST /api/token/ from `address` (as the proxy reports it). */
  async function tokenFrom(address: string, username: string, password: string): Promise<Answer> {
    return readAnswer(
      await fetch(`${fx.server.url}/api/token/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', 'x-forwarded-for': address },
        body: JSON.stringify({ username, password }),
      }),
    );
  }

  const statusesOf = (answers: Answer[]) => answers.map((a) => a.status);
  const tally = (statuses: number[]) => statuses.reduce<Record<number, number>>((t, s) => ({ ...t, [s]: (t[s] ?? 0) + 1 }), {});

  async function rowOf(scope: 'account' | 'ip', key: string) {
    const row = (await fx.server.latchkey.storage.knex('auth_failures').where({ scope, key }).first()) as Record<string, unknown> | undefined;
    return row && { failures: Number(row['failures']), pending: Number(row['pending']), locked: row['locked_until'] !== null && Number(row['locked_until']) > Date.now() };
  }

  it('signs in 55 simultaneous right passwords from one address (11 accounts x 5), and leaves the address unlocked', async () => {
    const address = newAddress();
    const users = await Promise.all(Array.from({ length: 11 }, () => makeUser(fx.server.latchkey)));
    const answers = await Promise.all(users.flatMap((u) => Array.from({ length: 5 }, () => tokenFrom(address, u.username, PASSWORD))));
    expect(tally(statusesOf(answers))).toEqual({ 200: 55 });
    expect(await rowOf('ip', address)).toEqual({ failures: 0, pending: 0, locked: false });
    for (const u of users) expect(await rowOf('account', `user:${u.id}`)).toEqual({ failures: 0, pending: 0, locked: false });
    expect((await tokenFrom(address, users[0]!.username, PASSWORD)).status).toBe(200);
  });

  it('signs in 8 simultaneous right passwords to one account (limit 5)', async () => {
    const address = newAddress();
    const user = await makeUser(fx.server.latchkey);
    const answers = await Promise.all(Array.from({ length: 8 }, () => tokenFrom(address, user.username, PASSWORD)));
    expect(tally(statusesOf(answers))).toEqual({ 200: 8 });
    expect(await rowOf('account', `user:${user.id}`)).toEqual({ failures: 0, pending: 0, locked: false });
  });

  it('checks exactly 5 of 20 simultaneous wrong passwords (the rest 429), then refuses the right one', async () => {
    const address = newAddress();
    const user = await makeUser(fx.server.latchkey);
    const answers = await Promise.all(Array.from({ length: 20 }, () => tokenFrom(address, user.username, WRONG)));
    expect(tally(statusesOf(answers))).toEqual({ 401: 5, 429: 15 });
    const locked = await tokenFrom(address, user.username, PASSWORD);
    expect(locked.status).toBe(429);
    expectRetryAfter(locked.headers);
    expect(await rowOf('account', `user:${user.id}`)).toEqual({ failures: 5, pending: 0, locked: true });
  });

  it('locks an account at exactly 5 wrong passwords while another account signs in alongside from the same address', async () => {
    const address = newAddress();
    const victim = await makeUser(fx.server.latchkey);
    const bystander = await makeUser(fx.server.latchkey);
    const wrong = Array.from({ length: 20 }, () => tokenFrom(address, victim.username, WRONG));
    const right = Array.from({ length: 10 }, () => tokenFrom(address, bystander.username, PASSWORD));
    const [guesses, logins] = await Promise.all([Promise.all(wrong), Promise.all(right)]);
    expect(tally(statusesOf(guesses))).toEqual({ 401: 5, 429: 15 });
    expect(tally(statusesOf(logins))).toEqual({ 200: 10 });
    expect((await tokenFrom(address, victim.username, PASSWORD)).status).toBe(429);
    expect((await tokenFrom(address, bystander.username, PASSWORD)).status).toBe(200);
  });

  it('locks an address at exactly 50 wrong passwords among simultaneous right ones', async () => {
    const address = newAddress();
    const users = await Promise.all(Array.from({ length: 4 }, () => makeUser(fx.server.latchkey)));
    // Unknown names: each a counter of its own, so only the address's limit applies.
    const wrong = Array.from({ length: 70 }, () => tokenFrom(address, unknownName(), WRONG));
    const right = users.flatMap((u) => Array.from({ length: 5 }, () => tokenFrom(address, u.username, PASSWORD)));
    const [guesses, logins] = await Promise.all([Promise.all(wrong), Promise.all(right)]);
    expect(tally(statusesOf(guesses))).toEqual({ 401: 50, 429: 20 });
    // A right password got in if it had a slot before the 50th failure, and was refused after.
    expect(statusesOf(logins).every((s) => s === 200 || s === 429), statusesOf(logins).join(',')).toBe(true);
    expect(await rowOf('ip', address)).toEqual({ failures: 50, pending: 0, locked: true });
    expect((await tokenFrom(address, users[0]!.username, PASSWORD)).status).toBe(429);
  });

  it('does not let slots left taken by a dead process block sign-ins once they have run out', async () => {
    const address = newAddress();
    const user = await makeUser(fx.server.latchkey);
    const knex = fx.server.latchkey.storage.knex;
    const now = Date.now();
    // Every slot of the account and of the address, taken by checks that never ended.
    const leaked = (scope: string, key: string, pending: number) => ({ scope, key, failures: 0, window_start: now, locked_until: null, pending, pending_until: now - 1 });
    await knex('auth_failures').insert([leaked('account', `user:${user.id}`, 5), leaked('ip', address, 50)]);
    const answers = await Promise.all(Array.from({ length: 8 }, () => tokenFrom(address, user.username, PASSWORD)));
    expect(tally(statusesOf(answers))).toEqual({ 200: 8 });
    expect(await rowOf('account', `user:${user.id}`)).toEqual({ failures: 0, pending: 0, locked: false });
    expect(await rowOf('ip', address)).toEqual({ failures: 0, pending: 0, locked: false });
  });

  it('still signs in through the one slot that slots taken by a dead process leave before they run out', async () => {
    const address = newAddress();
    const user = await makeUser(fx.server.latchkey);
    const now = Date.now();
    await fx.server.latchkey
      .storage.knex('auth_failures')
      .insert({ scope: 'account', key: `user:${user.id}`, failures: 0, window_start: now, locked_until: null, pending: 4, pending_until: now + 60_000 });
    const answers = await Promise.all(Array.from({ length: 3 }, () => tokenFrom(address, user.username, PASSWORD)));
    expect(tally(statusesOf(answers))).toEqual({ 200: 3 });
    expect(await rowOf('account', `user:${user.id}`)).toMatchObject({ pending: 4, locked: false });
  });
});
