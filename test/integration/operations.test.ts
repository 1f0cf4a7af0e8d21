import { freePort } from '../helpers/process.js';
/**
 * What an operator relies on: health probes, Prometheus metrics (and their token), JSON logs
 * that carry request ids and never a secret, configuration that fails fast with one line per
 * problem, and a SIGTERM that lets requests in flight finish. Probes and metrics run
 * in-process on each backend; logs, configuration and shutdown run `node dist/src/server.js`
 * as a real process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as oidc from 'openid-client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserAgent } from '../helpers/browserless.js';
import { freshDatabase, type TestDatabase } from '../helpers/database.js';
import { BACKENDS, PG_ADMIN_URL } from '../helpers/env.js';
import { readAnswer, type Answer } from '../helpers/http.js';
import { discover, loginAndExchange, makeClient, makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { ACCESS_TOKEN } from '../helpers/shapes.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SERVER = path.join(ROOT, 'dist/src/server.js');
const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const RUNTIME_WARNING = 'oidc-provider WARNING: Unsupported runtime';

// ---------------------------------------------------------------- helpers

interface Child {
  process: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

function spawnNode(args: string[], env: NodeJS.ProcessEnv, cwd = ROOT): Child {
  const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, at: Date.now() }));
  });
  return { process: child, stdout: () => out, stderr: () => err, exited };
}

const describeChild = (c: Child) => `stdout: ${c.stdout().slice(-4000)}\nstderr: ${c.stderr().slice(-4000)}`;

/** Runs to completion (killed after `limitMs`). */
async function runNode(args: string[], env: NodeJS.ProcessEnv, cwd = ROOT, limitMs = 45_000) {
  const child = spawnNode(args, env, cwd);
  const timer = setTimeout(() => child.process.kill('SIGKILL'), limitMs);
  const exit = await child.exited;
  clearTimeout(timer);
  return { ...exit, stdout: child.stdout(), stderr: child.stderr() };
}

async function waitForReady(child: Child, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void child.exited.then(() => (exited = true));
  while (!/Latchkey ready: issuer /.test(child.stdout())) {
    if (exited) throw new Error(`the server exited before it was ready\n${describeChild(child)}`);
    if (Date.now() > deadline) throw new Error(`the server was not ready within ${timeoutMs} ms\n${describeChild(child)}`);
    await sleep(50);
  }
}

async function stopChild(child: Child | undefined): Promise<void> {
  if (!child || child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.process.kill('SIGTERM');
  const timer = setTimeout(() => child.process.kill('SIGKILL'), 5_000);
  await child.exited;
  clearTimeout(timer);
}

/** Environment for a spawned server: nothing of ours inherited from the test runner. */
function serverEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? os.tmpdir() };
  return { ...env, ...vars };
}

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** When the last byte arrived. */
  at: number;
}

/** One request on its own fresh connection (no pooling), so tests control connections exactly. */
function rawRequest(url: string, { method = 'GET', headers = {}, body }: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  return new Promise<RawAnswer>((resolve, reject) => {
    const request = http.request(url, { method, headers: { ...headers, connection: 'close' }, agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text, at: Date.now() }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return readAnswer(
    await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
      body: JSON.stringify(body),
    }),
  );
}

async function postForm(url: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Answer> {
  return readAnswer(
    await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
      body: new URLSearchParams(fields).toString(),
    }),
  );
}

/** Values of the samples of `name` whose labels include `labels`, from the Prometheus text format. */
function samples(text: string, name: string, labels: Record<string, string> = {}): number[] {
  const found: number[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const own = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => own[k] === v)) found.push(Number(match[3]));
  }
  return found;
}
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

const strongPassword = () => `Op-${randomBytes(12).toString('base64url')}!`;

// ---------------------------------------------------------------- health

describeOnBackends('health probes (%s)', (fx) => {
  it('/health/live answers 200 without touching anything else', async () => {
    const response = await fetch(`${fx.server.url}/health/live`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('/health/ready answers 200 with every check ok', async () => {
    const response = await fetch(`${fx.server.url}/health/ready`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.json()).toEqual({ status: 'ok', checks: { database: 'ok', migrations: 'ok', keys: 'ok' } });
  });
});

describe.skipIf(!BACKENDS.includes('pg'))('readiness when the database is gone (pg)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('pg');
  });
  afterAll(async () => server?.stop());

  it('/health/ready answers 503 with database "unreachable", while /health/live stays 200', async () => {
    expect((await fetch(`${server.url}/health/ready`)).status).toBe(200);
    const name = new URL(server.db.url).pathname.slice(1);
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
    const ready = await fetch(`${server.url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'unavailable', checks: { database: 'unreachable' } });
    // Liveness is about the process, not its dependencies: restarting it would not help.
    expect((await fetch(`${server.url}/health/live`)).status).toBe(200);
  });
});

// ---------------------------------------------------------------- metrics

describeOnBackends('Prometheus metrics (%s)', (fx) => {
  const scrape = async () => {
    const response = await fetch(`${fx.server.url}/metrics`);
    expect(response.status).toBe(200);
    return { response, text: await response.text() };
  };

  it('serves the text format, open when no METRICS_TOKEN is set', async () => {
    const { response, text } = await scrape();
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(text).toContain('# TYPE latchkey_http_requests_total counter');
    expect(text).toContain('# TYPE latchkey_http_request_duration_seconds histogram');
  });

  it('counts tokens by grant type, logins by result, requests and latency by route group', async () => {
    const { client, clientSecret } = await makeClient(fx.server.latchkey, { name: 'Machine', grantTypes: ['client_credentials'], redirectUris: [] });
    const config = await discover(fx.server.issuer, client.clientId, clientSecret);
    expect((await oidc.clientCredentialsGrant(config)).access_token).toMatch(ACCESS_TOKEN);

    const user = await makeUser(fx.server.latchkey);
    const failed = await postJson(`${fx.server.url}/api/token/`, { username: user.username, password: 'not the password' });
    expect(failed.status).toBe(401);
    const ok = await postJson(`${fx.server.url}/api/token/`, { username: user.username, password: PASSWORD });
    expect(ok.status, ok.text).toBe(200);
    expect((await fetch(`${fx.server.url}/health/live`)).status).toBe(200);

    const { text } = await scrape();
    expect(sum(samples(text, 'latchkey_tokens_issued_total', { grant_type: 'client_credentials' }))).toBeGreaterThanOrEqual(1);
    expect(sum(samples(text, 'latchkey_logins_total', { result: 'failure' }))).toBeGreaterThanOrEqual(1);
    expect(sum(samples(text, 'latchkey_logins_total', { result: 'success' }))).toBeGreaterThanOrEqual(1);

    expect(sum(samples(text, 'latchkey_http_requests_total', { group: 'oidc_token', method: 'POST', status: '2xx' }))).toBeGreaterThanOrEqual(1);
    expect(sum(samples(text, 'latchkey_http_requests_total', { group: 'oidc', method: 'GET', status: '2xx' }))).toBeGreaterThanOrEqual(1); // discovery
    expect(sum(samples(text, 'latchkey_http_requests_total', { group: 'api', method: 'POST', status: '2xx' }))).toBeGreaterThanOrEqual(1);
    expect(sum(samples(text, 'latchkey_http_requests_total', { group: 'api', method: 'POST', status: '4xx' }))).toBeGreaterThanOrEqual(1);
    expect(sum(samples(text, 'latchkey_http_requests_total', { group: 'health', method: 'GET', status: '2xx' }))).toBeGreaterThanOrEqual(1);
    // Label values stay within the small, fixed set (no paths, ids or tokens as labels).
    const groups = new Set(
      [...text.matchAll(/^latchkey_http_requests_total\{[^}]*group="([^"]+)"/gm)].map((m) => m[1]),
    );
    for (const group of groups) expect(['oidc_token', 'oidc', 'interaction', 'api', 'admin', 'health', 'metrics', 'other']).toContain(group);

    expect(samples(text, 'latchkey_http_request_duration_seconds_bucket', { group: 'oidc_token', le: '+Inf' })[0]).toBeGreaterThanOrEqual(1);
    expect(samples(text, 'latchkey_http_request_duration_seconds_count', { group: 'api' })[0]).toBeGreaterThanOrEqual(2);

    expect(samples(text, 'latchkey_hash_pool_queue_length')).toHaveLength(1);
    expect(samples(text, 'latchkey_hash_pool_queue_length')[0]).toBeGreaterThanOrEqual(0);
    for (const state of ['used', 'free', 'pending']) {
      expect(samples(text, 'latchkey_db_pool_connections', { state }), state).toHaveLength(1);
    }
    expect(samples(text, 'latchkey_nodejs_eventloop_lag_seconds')).toHaveLength(1);
  });
});

describeOnBackends('metrics without METRICS_TOKEN, behind a proxy (TRUST_PROXY=1) (%s)', { TRUST_PROXY: '1' }, (fx) => {
  const scrape = async (forwardedFor?: string) =>
    readAnswer(await fetch(`${fx.server.url}/metrics`, forwardedFor ? { headers: { 'x-forwarded-for': forwardedFor } } : {}));

  it('refuses a client the proxy forwards from elsewhere with 403 access_denied', async () => {
    for (const forwardedFor of ['203.0.113.9', '127.0.0.1, 203.0.113.9', '2001:db8::9']) {
      const refused = await scrape(forwardedFor);
      expect(refused.status, forwardedFor).toBe(403);
      expect(refused.headers.get('content-type'), forwardedFor).toMatch(/^application\/json/);
      expect(refused.json['error'], forwardedFor).toBe('access_denied');
      expect(refused.json['error_description'], forwardedFor).toEqual(expect.any(String));
      expect(refused.text, forwardedFor).not.toContain('latchkey_');
    }
  });

  it('answers callers on this machine: a direct loopback request, or one the proxy forwards from loopback', async () => {
    for (const forwardedFor of [undefined, '127.0.0.1', '::1']) {
      const answer = await scrape(forwardedFor);
      expect(answer.status, String(forwardedFor)).toBe(200);
      expect(answer.text).toContain('latchkey_http_requests_total');
    }
  });
});

const metricsToken = randomBytes(24).toString('hex');

describeOnBackends('metrics behind METRICS_TOKEN, and lockouts (%s)', { METRICS_TOKEN: metricsToken, LOGIN_MAX_FAILURES_PER_ACCOUNT: '2', TRUST_PROXY: '1' }, (fx) => {
  const token = metricsToken;

  const scrape = async (authorization?: string, forwardedFor?: string) =>
    fetch(`${fx.server.url}/metrics`, {
      headers: { ...(authorization ? { authorization } : {}), ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}) },
    });

  it('with the token, a remote caller is served; without it, refused with 401 as anyone else', async () => {
    expect((await scrape(`Bearer ${token}`, '203.0.113.9')).status).toBe(200);
    const none = await scrape(undefined, '203.0.113.9');
    expect(none.status).toBe(401);
    expect(await none.text()).not.toContain('latchkey_');
  });

  it('answers 401 without the token or with a wrong one, 200 with it', async () => {
    const none = await scrape();
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const noneText = await none.text();
    expect(noneText).not.toContain('latchkey_');

    const sameLength = `${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}`;
    for (const wrong of [`Bearer ${sameLength}`, `Bearer ${token}x`, `Bearer ${token.slice(1)}`, `Basic ${token}`, 'Bearer ']) {
      const response = await scrape(wrong);
      expect(response.status, wrong).toBe(401);
      expect(await response.text()).not.toContain('latchkey_');
    }

    const right = await scrape(`Bearer ${token}`);
    expect(right.status).toBe(200);
    expect(right.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await right.text()).toContain('latchkey_http_requests_total');
  });

  it('counts a lockout in latchkey_lockouts_total (LOGIN_MAX_FAILURES_PER_ACCOUNT=2)', async () => {
    const read = async () => {
      const response = await scrape(`Bearer ${token}`);
      expect(response.status).toBe(200);
      return response.text();
    };
    const before = await read();
    const lockoutsBefore = sum(samples(before, 'latchkey_lockouts_total'));
    const throttledBefore = sum(samples(before, 'latchkey_logins_total', { result: 'throttled' }));

    const user = await makeUser(fx.server.latchkey);
    const attempt = (password: string) => postJson(`${fx.server.url}/api/token/`, { username: user.username, password });
    expect((await attempt('wrong password one')).status).toBe(401);
    expect(sum(samples(await read(), 'latchkey_lockouts_total'))).toBe(lockoutsBefore);
    expect((await attempt('wrong password two')).status).toBe(401);
    const locked = await attempt(PASSWORD);
    expect(locked.status).toBe(429);
    expect(locked.headers.get('retry-after')).toMatch(/^\d+$/);

    const after = await read();
    expect(sum(samples(after, 'latchkey_lockouts_total'))).toBe(lockoutsBefore + 1);
    expect(sum(samples(after, 'latchkey_logins_total', { result: 'throttled' }))).toBe(throttledBefore + 1);
  });
});

// ---------------------------------------------------------------- logs of a real process

describe('JSON logs of a real process (sqlite)', () => {
  let db: TestDatabase;
  let child: Child | undefined;
  /** stdout lines after the ready line, once the process has exited. */
  let afterReady: string[] | undefined;
  afterAll(async () => {
    await stopChild(child);
    await db?.drop();
  });

  it('one JSON line per request with its id, and never a password, secret, code or token', { timeout: 120_000 }, async () => {
    db = await freshDatabase('sqlite');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;

    // The client comes from the CLI before the server starts (its secret is printed there, not by the server).
    const made = await runNode([CLI, 'client', 'create', '--name', 'Logged', '--redirect-uri', REDIRECT_URI, '--json'], serverEnv({ DATABASE_URL: db.url }));
    expect(made.code, made.stderr).toBe(0);
    const { client_id: clientId, client_secret: clientSecret } = JSON.parse(made.stdout) as { client_id: string; client_secret: string };

    child = spawnNode(
      [SERVER],
      serverEnv({
        PORT: String(port),
        PUBLIC_URL: url,
        DATABASE_URL: db.url,
        BCRYPT_COST: '10',
        LOG_LEVEL: 'info',
        SWEEP_INTERVAL_SECONDS: '0',
        LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000',
        LOGIN_MAX_FAILURES_PER_IP: '100000',
      }),
    );
    await waitForReady(child);

    const username = `logged_${randomBytes(3).toString('hex')}`;
    const password = strongPassword();
    const wrongPassword = strongPassword();
    const secrets: Record<string, string> = { password, wrongPassword, clientSecret };

    const registered = await postJson(`${url}/api/users/`, { username, email: `${username}@example.com`, password });
    expect(registered.status, registered.text).toBe(201);

    // A failed and a successful /api/token/, the latter with our own request id.
    expect((await postJson(`${url}/api/token/`, { username, password: wrongPassword })).status).toBe(401);
    const api = await postJson(`${url}/api/token/`, { username, password }, { 'x-request-id': 'test-req-123' });
    expect(api.status, api.text).toBe(200);
    expect(api.headers.get('x-request-id')).toBe('test-req-123');
    secrets['apiAccess'] = String(api.json['access']);
    secrets['apiRefresh'] = String(api.json['refresh']);
    const apiRefreshed = await postJson(`${url}/api/token/refresh/`, { refresh: secrets['apiRefresh'] });
    expect(apiRefreshed.status, apiRefreshed.text).toBe(200);
    secrets['apiAccess2'] = String(apiRefreshed.json['access']);
    if (typeof apiRefreshed.json['refresh'] === 'string') secrets['apiRefresh2'] = apiRefreshed.json['refresh'];
    // Without an incoming id, one is made up and echoed.
    const generated = await fetch(`${url}/health/live`);
    const generatedId = generated.headers.get('x-request-id') ?? '';
    expect(generatedId).toMatch(/^[0-9a-f-]{36}$/);
    // An id that could forge log content is replaced, not echoed.
    const hostile = await fetch(`${url}/health/live`, { headers: { 'x-request-id': 'evil"}\u0009{"injected":1' } });
    expect(hostile.headers.get('x-request-id')).not.toContain('evil');

    // The legacy /users/login/ (provider tokens for the first-party client).
    const legacy = await postForm(`${url}/users/login/`, { username, password });
    expect(legacy.status, legacy.text).toBe(200);
    for (const field of ['access_token', 'refresh_token', 'id_token']) {
      if (typeof legacy.json[field] === 'string') secrets[`legacy_${field}`] = legacy.json[field];
    }
    expect(secrets['legacy_access_token']).toMatch(ACCESS_TOKEN);

    // An authorization-code flow; the client authenticates with its secret in a Basic header.
    const config = await discover(`${url}/o`, clientId, clientSecret);
    const agent = new UserAgent();
    const flow = await loginAndExchange(config, agent, { username, password });
    secrets['code'] = flow.callbackUrl.searchParams.get('code') ?? '';
    secrets['codeVerifier'] = flow.codeVerifier;
    secrets['accessToken'] = flow.tokens.access_token;
    secrets['refreshToken'] = flow.tokens.refresh_token ?? '';
    secrets['idToken'] = flow.tokens.id_token ?? '';
    secrets['basicCredentials'] = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64');
    for (const cookie of await agent.jar.getCookies(url)) {
      if (cookie.value.length >= 16) secrets[`cookie_${cookie.key}`] = cookie.value;
    }
    const refreshed = await oidc.refreshTokenGrant(config, secrets['refreshToken']);
    secrets['refreshedAccess'] = refreshed.access_token;
    secrets['refreshedRefresh'] = refreshed.refresh_token ?? '';
    // A browser-based client calls userinfo cross-origin (CORS decided per client).
    const cors = await fetch(`${url}/o/me`, {
      headers: { authorization: `Bearer ${secrets['refreshedAccess']}`, origin: 'http://127.0.0.1:8787', accept: 'application/json' },
    });
    expect(cors.status, await cors.clone().text()).toBe(200);
    await oidc.tokenRevocation(config, secrets['refreshedRefresh'], { token_type_hint: 'refresh_token' });
    await oidc.tokenRevocation(config, secrets['refreshedAccess']);

    const exit = await (async () => {
      child.process.kill('SIGTERM');
      return child.exited;
    })();
    expect(exit.code, describeChild(child)).toBe(0);

    const stdout = child.stdout();
    const lines = stdout.split('\n').filter((l) => l !== '');
    const ready = lines.findIndex((l) => l.startsWith('Latchkey ready: issuer '));
    expect(ready, stdout).toBeGreaterThanOrEqual(0);
    afterReady = lines.slice(ready + 1);
    const entries = afterReady
      .map((line) => {
        try {
          return JSON.parse(line) as Record<string, unknown>;
        } catch {
          throw new Error(`not a JSON line: ${line}`);
        }
      });
    expect(entries.length).toBeGreaterThan(10);
    for (const entry of entries) {
      expect(entry).toMatchObject({ service: 'latchkey', level: expect.any(Number), time: expect.any(Number), msg: expect.any(String) });
    }

    const requests = entries.filter((e) => e['msg'] === 'request');
    expect(requests.length).toBeGreaterThan(10);
    for (const entry of requests) {
      expect(entry).toMatchObject({
        reqId: expect.any(String),
        method: expect.any(String),
        path: expect.any(String),
        status: expect.any(Number),
        ms: expect.any(Number),
      });
      // Paths only: never a query string (where codes, states and tokens travel).
      expect(String(entry['path'])).not.toContain('?');
    }
    expect(requests.filter((e) => e['reqId'] === 'test-req-123')).toEqual([
      expect.objectContaining({ method: 'POST', path: '/api/token/', status: 200 }),
    ]);
    expect(requests.some((e) => e['reqId'] === generatedId && e['path'] === '/health/live')).toBe(true);
    const paths = new Set(requests.map((e) => `${String(e['method'])} ${String(e['path'])}`));
    for (const expected of ['POST /api/users/', 'POST /users/login/', 'GET /o/auth', 'POST /o/token', 'POST /o/token/revocation']) {
      expect([...paths], expected).toContain(expected);
    }
    expect(requests.filter((e) => e['path'] === '/api/token/').map((e) => e['status']).sort()).toEqual([200, 401]);
    expect(entries.some((e) => e['msg'] === 'stopped')).toBe(true);

    const everything = stdout + child.stderr();
    for (const [what, value] of Object.entries(secrets)) {
      expect(value, `${what} was captured`).toBeTruthy();
      expect(everything.includes(value), `the log contains the ${what}`).toBe(false);
    }
  });

  // The provider's default policies print plain-text notices on first use; ours are explicit.
  it('writes nothing but JSON to stdout after the ready line', () => {
    expect(afterReady, 'the log run above did not complete').toBeDefined();
    const notJson = (afterReady ?? []).filter((line) => {
      try {
        JSON.parse(line);
        return false;
      } catch {
        return true;
      }
    });
    expect(notJson).toEqual([]);
  });
});

// ---------------------------------------------------------------- configuration

describe('configuration fails fast (a real process)', () => {
  let cwd: string;
  beforeAll(() => {
    // An empty directory: no .env to read, and nowhere a default database could be created unseen.
    cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-config-'));
  });
  afterAll(() => fs.rmSync(cwd, { recursive: true, force: true }));

  const start = async (vars: Record<string, string>) => {
    const started = Date.now();
    const result = await runNode([SERVER], serverEnv(vars), cwd, 20_000);
    const errors = result.stderr.split('\n').filter((l) => l !== '' && !l.startsWith(RUNTIME_WARNING));
    return { ...result, errors, ms: Date.now() - started };
  };

  it('exits 1 with one "config error:" line per bad variable', async () => {
    const r = await start({ PORT: 'abc', BCRYPT_COST: '9', DATABASE_URL: 'mysql://x' });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.errors, r.stderr).toHaveLength(3);
    for (const line of r.errors) expect(line).toMatch(/^config error: \S/);
    for (const name of ['PORT', 'BCRYPT_COST', 'DATABASE_URL']) {
      expect(r.errors.filter((l) => l.includes(name)), name).toHaveLength(1);
    }
    expect(r.errors.find((l) => l.includes('PORT'))).toContain('abc');
    expect(r.errors.find((l) => l.includes('DATABASE_URL'))).toContain('mysql://x');
    expect(r.ms).toBeLessThan(15_000);
    expect(fs.readdirSync(cwd)).toEqual([]);
  });

  it('NODE_ENV=production without PUBLIC_URL and DATABASE_URL: exit 1 naming both', async () => {
    const r = await start({ NODE_ENV: 'production' });
    expect(r.code, r.stderr).toBe(1);
    expect(r.errors, r.stderr).toHaveLength(2);
    for (const line of r.errors) expect(line).toMatch(/^config error: /);
    expect(r.errors.filter((l) => l.includes('PUBLIC_URL'))).toHaveLength(1);
    expect(r.errors.filter((l) => l.includes('DATABASE_URL'))).toHaveLength(1);
    // No default SQLite file was created on the way out.
    expect(fs.readdirSync(cwd)).toEqual([]);
  });

  it('NODE_ENV=production with an http PUBLIC_URL: exit 1 asking for https', async () => {
    const r = await start({ NODE_ENV: 'production', PUBLIC_URL: 'http://id.example.com', DATABASE_URL: `sqlite:${path.join(cwd, 'x.sqlite3')}` });
    expect(r.code, r.stderr).toBe(1);
    expect(r.errors, r.stderr).toHaveLength(1);
    expect(r.errors[0]).toMatch(/^config error: .*https/);
    expect(r.errors[0]).toContain('PUBLIC_URL');
    expect(fs.existsSync(path.join(cwd, 'x.sqlite3'))).toBe(false);
  });
});

// ---------------------------------------------------------------- graceful shutdown

describe('graceful shutdown on SIGTERM (a real process, sqlite)', () => {
  let db: TestDatabase;
  let child: Child | undefined;
  afterAll(async () => {
    await stopChild(child);
    await db?.drop();
  });

  it('finishes the request in flight, refuses new connections, exits 0 within the grace period', { timeout: 120_000 }, async () => {
    const GRACE_SECONDS = 5;
    db = await freshDatabase('sqlite');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    child = spawnNode(
      [SERVER],
      serverEnv({
        PORT: String(port),
        PUBLIC_URL: url,
        DATABASE_URL: db.url,
        BCRYPT_COST: '14', // about a second per hash: long enough to be caught in flight
        LOG_LEVEL: 'info',
        SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS),
        SWEEP_INTERVAL_SECONDS: '0',
      }),
    );
    await waitForReady(child);

    const username = `graceful_${randomBytes(3).toString('hex')}`;
    const password = strongPassword();
    const registered = await rawRequest(`${url}/api/users/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, email: `${username}@example.com`, password }),
    });
    expect(registered.status, registered.body).toBe(201);

    const sent = Date.now();
    const inFlight = rawRequest(`${url}/api/token/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'in-flight-1' },
      body: JSON.stringify({ username, password }),
    });
    inFlight.catch(() => {}); // awaited below; keep an early failure from being unhandled
    await sleep(150);
    expect(child.process.exitCode).toBeNull();
    child.process.kill('SIGTERM');
    const signalled = Date.now();

    await sleep(300);
    const late = await rawRequest(`${url}/health/live`).then(
      (answer) => ({ ok: true as const, answer }),
      (error: NodeJS.ErrnoException) => ({ ok: false as const, code: error.code }),
    );
    expect(late, 'a new connection after SIGTERM was served').toMatchObject({ ok: false });
    if (!late.ok) expect(['ECONNREFUSED', 'ECONNRESET']).toContain(late.code);

    const answer = await inFlight;
    expect(answer.status, answer.body).toBe(200);
    const body = JSON.parse(answer.body) as Record<string, unknown>;
    expect(typeof body['access']).toBe('string');
    expect(typeof body['refresh']).toBe('string');
    // It really was in flight when the signal came: it finished after it.
    expect(answer.at).toBeGreaterThan(signalled);
    expect(signalled - sent).toBeLessThan(1000);

    const exit = await child.exited;
    expect(exit.code, describeChild(child)).toBe(0);
    expect(exit.signal).toBeNull();
    expect(exit.at - signalled).toBeLessThan((GRACE_SECONDS + 3) * 1000);

    const entries = child
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const shuttingDown = entries.findIndex((e) => String(e['msg']).startsWith('shutting down') && e['signal'] === 'SIGTERM');
    const finished = entries.findIndex((e) => e['msg'] === 'request' && e['reqId'] === 'in-flight-1' && e['status'] === 200);
    const stopped = entries.findIndex((e) => e['msg'] === 'stopped');
    expect(shuttingDown, child.stdout()).toBeGreaterThanOrEqual(0);
    expect(finished, child.stdout()).toBeGreaterThan(shuttingDown);
    expect(stopped, child.stdout()).toBeGreaterThan(finished);
    expect(entries.filter((e) => Number(e['level']) >= 50), child.stdout()).toEqual([]);
  });
});
