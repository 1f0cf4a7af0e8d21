/**
 * Losing the database (PostgreSQL behind a TCP proxy the test can cut): every endpoint that
 * needs it fails closed with a 5xx (never a token, never an introspection verdict), /health
 * says 503, and once the database is back everything works again without a restart, with
 * tokens issued before the outage still valid.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningLatchkey } from '../../src/start.js';
import { freshDatabase, type TestDatabase } from '../helpers/database.js';
import { BACKENDS, PG_ADMIN_URL } from '../helpers/env.js';
import { readAnswer, type Answer } from '../helpers/http.js';
import { makeClient, makeUser, PASSWORD } from '../helpers/rp.js';
import { startOnDatabase } from '../helpers/server.js';

/** A TCP proxy to PostgreSQL that can be cut (listener closed, every connection dropped) and restored on the same port. */
class TcpProxy {
  #server: net.Server | undefined;
  readonly #sockets = new Set<net.Socket>();
  #port = 0;

  readonly targetHost: string;
  readonly targetPort: number;

  constructor(targetHost: string, targetPort: number) {
    this.targetHost = targetHost;
    this.targetPort = targetPort;
  }

  get port(): number {
    return this.#port;
  }

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.targetHost);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('close', () => this.#sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#port = (server.address() as net.AddressInfo).port;
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    await closed;
  }
}

const pgOnly = !BACKENDS.includes('pg');

describe.skipIf(pgOnly)('database outage behind a proxy (pg)', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let running: RunningLatchkey | undefined;
  let machine: { id: string; secret: string };
  let username: string;
  /** Issued before the outage. */
  let before: { access: string; refresh: string; spare: string };

  beforeAll(async () => {
    db = await freshDatabase('pg');
    const target = new URL(PG_ADMIN_URL);
    proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.start();
    const proxied = new URL(db.url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    running = await startOnDatabase({ ...db, url: proxied.href }, {});
    const made = await makeClient(running.latchkey, {
      name: 'Outage machine',
      grantTypes: ['client_credentials', 'password', 'refresh_token'],
      redirectUris: [],
    });
    machine = { id: made.client.clientId, secret: made.clientSecret! };
    username = (await makeUser(running.latchkey)).username;

    const first = await passwordGrant();
    expect(first.status, first.text).toBe(200);
    const spare = await clientCredentials();
    expect(spare.status, spare.text).toBe(200);
    before = { access: first.json['access_token'] as string, refresh: first.json['refresh_token'] as string, spare: spare.json['access_token'] as string };
    expect(before.refresh).toEqual(expect.any(String));
  });

  afterAll(async () => {
    await proxy?.start().catch(() => {});
    await running?.close(1000);
    await proxy?.stop();
    await db?.drop();
  });

  const basic = () => `Basic ${Buffer.from(`${machine.id}:${machine.secret}`).toString('base64')}`;

  async function send(path: string, init: { form?: Record<string, string>; json?: unknown; auth?: boolean } = {}): Promise<Answer> {
    const headers: Record<string, string> = { accept: 'application/json' };
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    } else if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    if (init.auth) headers['authorization'] = basic();
    // A hung request fails the test rather than stalling it.
    const response = await fetch(`${running!.url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers,
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(20_000),
    });
    return readAnswer(response);
  }

  const clientCredentials = () => send('/o/token', { auth: true, form: { grant_type: 'client_credentials' } });
  const passwordGrant = () => send('/o/token', { auth: true, form: { grant_type: 'password', username, password: PASSWORD, scope: 'openid offline_access' } });
  const refresh = (token: string) => send('/o/token', { auth: true, form: { grant_type: 'refresh_token', refresh_token: token } });
  const revoke = (token: string) => send('/o/token/revocation', { auth: true, form: { token } });
  const introspect = (token: string) => send('/o/token/introspection', { auth: true, form: { token } });
  const health = () => send('/health');
  const apiToken = () => send('/api/token/', { json: { username, password: PASSWORD } });

  function expectFailedClosed(what: string, answer: Answer): void {
    expect(answer.status, `${what} during the outage: ${answer.status} ${answer.text}`).toBeGreaterThanOrEqual(500);
    expect(answer.status).toBeLessThan(600);
    expect(answer.text, what).not.toMatch(/access_token|refresh_token|"access"|"refresh"|"active"/);
  }

  it('fails closed while the database is unreachable and recovers by itself when it returns', async () => {
    // Positive controls before the outage.
    expect((await health()).status).toBe(200);
    expect((await introspect(before.access)).json).toMatchObject({ active: true });

    await proxy.stop();
    try {
      expectFailedClosed('client_credentials', await clientCredentials());
      expectFailedClosed('refresh_token grant', await refresh(before.refresh));
      expectFailedClosed('password grant', await passwordGrant());
      expectFailedClosed('revocation', await revoke(before.spare));
      const introspection = await introspect(before.access);
      expectFailedClosed('introspection', introspection);
      expect(introspection.json).not.toHaveProperty('active');
      const down = await health();
      expect(down.status, down.text).toBe(503);
      expect(down.json).toMatchObject({ status: 'unavailable' });
      expectFailedClosed('/api/token/', await apiToken());
      // Twice: a pool emptied by the first failures fails the same way.
      expectFailedClosed('client_credentials again', await clientCredentials());
      expect((await health()).status).toBe(503);
    } finally {
      await proxy.start();
    }

    // Back: within ten seconds every endpoint works again, without a restart.
    const deadline = Date.now() + 10_000;
    const pending = new Set(['health', 'client_credentials', 'introspection', 'api_token', 'refresh', 'revocation']);
    const problems = new Map<string, string>();
    while (pending.size && Date.now() < deadline) {
      for (const what of [...pending]) {
        let ok = false;
        let answer: Answer | undefined;
        try {
          if (what === 'health') {
            answer = await health();
            ok = answer.status === 200 && answer.json['status'] === 'ok';
          } else if (what === 'client_credentials') {
            answer = await clientCredentials();
            ok = answer.status === 200 && typeof answer.json['access_token'] === 'string';
          } else if (what === 'introspection') {
            answer = await introspect(before.access);
            ok = answer.status === 200 && answer.json['active'] === true;
          } else if (what === 'api_token') {
            answer = await apiToken();
            ok = answer.status === 200 && typeof answer.json['access'] === 'string';
          } else if (what === 'refresh') {
            // Only once the database answers, so that this is the token's first real use.
            if (pending.has('health')) continue;
            answer = await refresh(before.refresh);
            ok = answer.status === 200 && typeof answer.json['access_token'] === 'string';
          } else {
            answer = await revoke(before.spare);
            ok = answer.status === 200;
          }
        } catch (error) {
          problems.set(what, String(error));
        }
        if (ok) pending.delete(what);
        else if (answer) problems.set(what, `${answer.status} ${answer.text.slice(0, 200)}`);
      }
      if (pending.size) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect([...pending].map((what) => `${what}: ${problems.get(what) ?? 'not tried'}`)).toEqual([]);

    // The refresh token issued before the outage was not spent by the failed attempt: it
    // rotated exactly once, now. The revoked spare token is gone; the other still active.
    expect((await introspect(before.spare)).json).toEqual({ active: false });
    expect((await introspect(before.access)).json).toMatchObject({ active: true, client_id: machine.id });
    const fresh = await passwordGrant();
    expect(fresh.status, fresh.text).toBe(200);
  });
});
