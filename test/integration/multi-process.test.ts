import { freePort } from '../helpers/process.js';
/**
 * Two real Latchkey processes (`node dist/src/server.js`) on one PostgreSQL database behind
 * one public URL: a tiny switchable HTTP front in this file plays the load balancer, and each
 * phase of a relying party's life is routed to A or to B. Whatever one process stores
 * (sessions, codes, refresh-token rotation, keys) the other must honour.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import * as oidc from 'openid-client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrations } from '../../migrations/index.js';
import { UserAgent } from '../helpers/browserless.js';
import { freshDatabase, type TestDatabase } from '../helpers/database.js';
import { BACKENDS } from '../helpers/env.js';
import { authorize, discover, REDIRECT_URI } from '../helpers/rp.js';
import { ACCESS_TOKEN, JWT, OPAQUE_TOKEN } from '../helpers/shapes.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SERVER = path.join(ROOT, 'dist/src/server.js');
const CLI = path.join(ROOT, 'dist/src/cli/main.js');

type Backend = 'A' | 'B';

// ---------------------------------------------------------------- child processes

interface Child {
  name: string;
  process: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnChild(name: string, args: string[], env: NodeJS.ProcessEnv): Child {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  return { name, process: child, stdout: () => out, stderr: () => err, exited };
}

const describeChild = (c: Child) => `${c.name}\nstdout: ${c.stdout().slice(-3000)}\nstderr: ${c.stderr().slice(-3000)}`;

/** Resolves with the issuer printed on the ready line; fails if the process exits first or takes too long. */
async function waitForReady(child: Child, timeoutMs = 45_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void child.exited.then(() => (exited = true));
  for (;;) {
    const match = /Latchkey ready: issuer (\S+)/.exec(child.stdout());
    if (match?.[1]) return match[1];
    if (exited) throw new Error(`${child.name} exited before it was ready\n${describeChild(child)}`);
    if (Date.now() > deadline) throw new Error(`${child.name} was not ready within ${timeoutMs} ms\n${describeChild(child)}`);
    await sleep(50);
  }
}

/** SIGTERM, then SIGKILL if it is still there after 5 s. */
async function stopChild(child: Child | undefined): Promise<void> {
  if (!child || child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.process.kill('SIGTERM');
  const timer = setTimeout(() => child.process.kill('SIGKILL'), 5_000);
  await child.exited;
  clearTimeout(timer);
}

async function runCli(databaseUrl: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnChild(`cli ${args.join(' ')}`, [CLI, ...args], { ...process.env, DATABASE_URL: databaseUrl, BCRYPT_COST: '10' });
  const timer = setTimeout(() => child.process.kill('SIGKILL'), 45_000);
  const { code } = await child.exited;
  clearTimeout(timer);
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

// ---------------------------------------------------------------- the switchable front

interface Front {
  url: string;
  /** Sends every following request to this backend. */
  use(backend: Backend): void;
  /** Every request forwarded so far, in order. */
  log: Array<{ backend: Backend; method: string; path: string; status: number }>;
  close(): Promise<void>;
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer'];

/**
 * A minimal reverse proxy: method, path, headers (cookies included) and body go to the
 * current backend over a fresh connection; status, headers (set-cookie and location
 * included) and body come back unchanged.
 */
async function startFront(port: number, backends: Record<Backend, number>): Promise<Front> {
  let current: Backend = 'A';
  const log: Front['log'] = [];
  const server = http.createServer((req, res) => {
    const backend = current;
    const entry = { backend, method: req.method ?? 'GET', path: (req.url ?? '/').split('?')[0] ?? '/', status: 0 };
    log.push(entry);
    const headers = { ...req.headers };
    for (const h of HOP_BY_HOP) delete headers[h];
    const upstream = http.request(
      { host: '127.0.0.1', port: backends[backend], method: req.method, path: req.url, headers, agent: false },
      (answer) => {
        entry.status = answer.statusCode ?? 502;
        const back = { ...answer.headers };
        for (const h of HOP_BY_HOP) delete back[h];
        res.writeHead(answer.statusCode ?? 502, { ...back, 'x-served-by': backend });
        answer.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      entry.status = 502;
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`front: backend ${backend} failed: ${error.message}`);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    use(backend) {
      current = backend;
    },
    log,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------- the test

describe.skipIf(!BACKENDS.includes('pg'))('two processes on one PostgreSQL behind one URL', () => {
  let db: TestDatabase;
  let front: Front;
  let ports: Record<Backend, number>;
  const children: Partial<Record<Backend, Child>> = {};
  let issuer: string;

  beforeAll(async () => {
    db = await freshDatabase('pg');
    ports = { A: await freePort(), B: await freePort() };
    front = await startFront(await freePort(), ports);
    const env = (backend: Backend): NodeJS.ProcessEnv => ({
      ...process.env,
      PORT: String(ports[backend]),
      PUBLIC_URL: front.url,
      DATABASE_URL: db.url,
      BCRYPT_COST: '10',
      KEY_REFRESH_SECONDS: '1',
      LOG_LEVEL: 'warn',
      LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000',
      LOGIN_MAX_FAILURES_PER_IP: '100000',
    });
    // Both at once on an empty database: both migrate and both look for keys concurrently.
    children.A = spawnChild('A', [SERVER], env('A'));
    children.B = spawnChild('B', [SERVER], env('B'));
    const [issuerA, issuerB] = await Promise.all([waitForReady(children.A), waitForReady(children.B)]);
    issuer = `${front.url}/o`;
    expect(issuerA).toBe(issuer);
    expect(issuerB).toBe(issuer);
  }, 90_000);

  afterAll(async () => {
    await Promise.all([stopChild(children.A), stopChild(children.B)]);
    await front?.close();
    await db?.drop();
  }, 30_000);

  /** Requests the front forwarded while `fn` ran. */
  async function routedTo<T>(backend: Backend, fn: () => Promise<T>): Promise<{ value: T; requests: Front['log'] }> {
    front.use(backend);
    const from = front.log.length;
    const value = await fn();
    return { value, requests: front.log.slice(from) };
  }

  const jwksOf = async (backend: Backend): Promise<JSONWebKeySet> => {
    const response = await fetch(`http://127.0.0.1:${ports[backend]}/o/jwks`);
    expect(response.status).toBe(200);
    return (await response.json()) as JSONWebKeySet;
  };
  const kidsOf = (set: JSONWebKeySet) => set.keys.map((k) => k.kid ?? '').sort();

  it('migrated once and created one set of keys although both booted at once', async () => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const applied = await client.query<{ name: string }>('select name from knex_migrations order by id');
      expect(applied.rows.map((r) => r.name)).toEqual(migrations.map((m) => m.name));
      const keys = await client.query<{ alg: string; status: string }>('select alg, status from signing_keys order by alg');
      expect(keys.rows).toEqual([
        { alg: 'ES256', status: 'current' },
        { alg: 'RS256', status: 'current' },
      ]);
      const cookies = await client.query<{ n: string }>('select count(*)::text as n from cookie_keys');
      expect(cookies.rows[0]?.n).toBe('1');
    } finally {
      await client.end();
    }
    // And both serve exactly those keys.
    const [a, b] = await Promise.all([jwksOf('A'), jwksOf('B')]);
    expect(kidsOf(a)).toHaveLength(2);
    expect(kidsOf(b)).toEqual(kidsOf(a));
    for (const key of [...a.keys, ...b.keys]) expect(key).not.toHaveProperty('d');
  });

  it('shares sessions, codes, refresh-token rotation and key rotation between the processes', { timeout: 120_000 }, async () => {
    // ---- a client (through the CLI, as an operator would) and a user (through A's API)
    const made = await runCli(db.url, 'client', 'create', '--name', 'Two Processes', '--redirect-uri', REDIRECT_URI, '--json');
    expect(made.code, made.stderr).toBe(0);
    const { client_id: clientId, client_secret: clientSecret } = JSON.parse(made.stdout) as { client_id: string; client_secret: string };
    const suffix = randomBytes(4).toString('hex');
    const login = { username: `mp_${suffix}`, password: `Mp-${randomBytes(12).toString('base64url')}` };
    const registered = await routedTo('A', async () => {
      const response = await fetch(`${front.url}/api/users/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ ...login, email: `${login.username}@example.com` }),
      });
      return { status: response.status, headers: response.headers, text: await response.text() };
    });
    expect(registered.value.status, registered.value.text).toBe(201);
    expect(registered.value.headers.get('x-served-by')).toBe('A');

    const config = (await routedTo('A', () => discover(issuer, clientId, clientSecret))).value;
    const agent = new UserAgent();

    // ---- login session and authorization code made through A
    const viaA = await routedTo('A', () => authorize(config, agent, login));
    expect(viaA.requests.map((r) => r.backend)).toEqual(viaA.requests.map(() => 'A'));
    expect(viaA.requests.some((r) => r.method === 'POST' && r.path.endsWith('/login'))).toBe(true);
    const code = viaA.value.callbackUrl.searchParams.get('code');
    expect(code).toMatch(OPAQUE_TOKEN);

    // ---- that code redeemed through B
    const exchanged = await routedTo('B', () =>
      oidc.authorizationCodeGrant(config, viaA.value.callbackUrl, {
        pkceCodeVerifier: viaA.value.codeVerifier,
        expectedState: viaA.value.state,
        expectedNonce: viaA.value.nonce,
        idTokenExpected: true,
      }),
    );
    expect(exchanged.requests).toEqual([expect.objectContaining({ backend: 'B', method: 'POST', path: '/o/token', status: 200 })]);
    const tokens = exchanged.value;
    expect(tokens.access_token).toMatch(ACCESS_TOKEN);
    expect(tokens.refresh_token).toMatch(OPAQUE_TOKEN);
    const oldIdToken = tokens.id_token ?? '';
    expect(oldIdToken).toMatch(JWT);
    const sub = tokens.claims()?.sub ?? '';
    expect(sub).toMatch(/^\d+$/);

    // ---- the session made through A is valid through B: no login form, consent not asked again
    const sso = await routedTo('B', () => authorize(config, agent, null, {}, { consent: 'skip' }));
    expect(sso.requests.length).toBeGreaterThan(0);
    expect(sso.requests.every((r) => r.backend === 'B')).toBe(true);
    expect(sso.requests.some((r) => r.path.endsWith('/login'))).toBe(false);
    expect(sso.value.callbackUrl.searchParams.get('code')).toMatch(OPAQUE_TOKEN);

    // ---- the access token issued by B is accepted by A
    const info = await routedTo('A', () => oidc.fetchUserInfo(config, tokens.access_token, sub));
    expect(info.value.sub).toBe(sub);
    expect(info.requests.every((r) => r.backend === 'A')).toBe(true);

    // ---- a refresh token rotated at B is refused at A
    const refreshed = await routedTo('B', () => oidc.refreshTokenGrant(config, tokens.refresh_token ?? ''));
    expect(refreshed.requests).toEqual([expect.objectContaining({ backend: 'B', path: '/o/token', status: 200 })]);
    expect(refreshed.value.refresh_token).toMatch(OPAQUE_TOKEN);
    expect(refreshed.value.refresh_token).not.toBe(tokens.refresh_token);
    front.use('A');
    const from = front.log.length;
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token ?? '')).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(front.log.slice(from)).toEqual([expect.objectContaining({ backend: 'A', path: '/o/token', status: 400 })]);
    // That replay is reuse: the whole grant is revoked, so the token B just rotated to is dead at B too.
    front.use('B');
    await expect(oidc.refreshTokenGrant(config, refreshed.value.refresh_token ?? '')).rejects.toMatchObject({ error: 'invalid_grant' });

    // ---- same keys on both
    const beforeA = await jwksOf('A');
    const beforeB = await jwksOf('B');
    expect(kidsOf(beforeB)).toEqual(kidsOf(beforeA));
    expect(kidsOf(beforeA)).toContain(decodeProtectedHeader(oldIdToken).kid);

    // ---- a rotation made against the database (the CLI, while A and B run) reaches B within 5 s
    const rotatedRun = await runCli(db.url, 'keys', 'rotate', '--json');
    expect(rotatedRun.code, rotatedRun.stderr).toBe(0);
    const rotated = JSON.parse(rotatedRun.stdout) as { added: string[]; retired: string[] };
    expect(rotated.added).toHaveLength(2);
    expect([...rotated.retired].sort()).toEqual(kidsOf(beforeA));

    const publishedBy = async (backend: Backend, withinMs: number): Promise<{ set: JSONWebKeySet; afterMs: number }> => {
      const started = Date.now();
      for (;;) {
        const set = await jwksOf(backend);
        const kids = kidsOf(set);
        if (rotated.added.every((kid) => kids.includes(kid))) return { set, afterMs: Date.now() - started };
        if (Date.now() - started > withinMs) throw new Error(`${backend} still publishes ${kids.join(', ')} after ${withinMs} ms`);
        await sleep(100);
      }
    };
    const [publishedB, publishedA] = await Promise.all([publishedBy('B', 5_000), publishedBy('A', 5_000)]);
    expect(publishedB.afterMs).toBeLessThanOrEqual(5_000);
    // Retired keys stay published next to the new ones, on both.
    expect(kidsOf(publishedB.set)).toEqual([...rotated.added, ...rotated.retired].sort());
    expect(kidsOf(publishedA.set)).toEqual(kidsOf(publishedB.set));

    // ---- a new ID token through B carries a new kid. The browser session (cookies signed with
    // the cookie key of before the rotation) still needs no login form; consent is asked again
    // only because the replay above revoked the grant.
    const again = await routedTo('B', async () => {
      const front2 = await authorize(config, agent, null, {}, { consent: 'allow' });
      return oidc.authorizationCodeGrant(config, front2.callbackUrl, {
        pkceCodeVerifier: front2.codeVerifier,
        expectedState: front2.state,
        expectedNonce: front2.nonce,
        idTokenExpected: true,
      });
    });
    expect(again.requests.every((r) => r.backend === 'B')).toBe(true);
    expect(again.requests.some((r) => r.path.endsWith('/login'))).toBe(false);
    expect(again.requests.some((r) => r.method === 'POST' && r.path.endsWith('/confirm'))).toBe(true);
    const newIdToken = again.value.id_token ?? '';
    expect(rotated.added).toContain(decodeProtectedHeader(newIdToken).kid);

    // ---- old and new ID tokens verify against both processes' JWKS
    for (const set of [await jwksOf('A'), await jwksOf('B')]) {
      for (const token of [oldIdToken, newIdToken]) {
        const { payload } = await jwtVerify(token, createLocalJWKSet(set), { issuer, audience: clientId });
        expect(payload.sub).toBe(sub);
      }
    }

    // Neither process logged anything at warn or above along the way.
    for (const child of [children.A, children.B]) {
      const lines = (child?.stdout() ?? '').split('\n').filter((l) => l.startsWith('{'));
      const bad = lines.filter((l) => Number((JSON.parse(l) as { level?: number }).level ?? 0) >= 50);
      expect(bad, describeChild(child!)).toEqual([]);
    }
  });
});
