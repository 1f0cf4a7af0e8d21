import { migrations } from '../../migrations/index.js';
import { runProcess, type ProcessResult } from '../helpers/process.js';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningLatchkey } from '../../src/start.js';
import { UserAgent } from '../helpers/browserless.js';
import { freshDatabase, type TestDatabase } from '../helpers/database.js';
import { BACKENDS } from '../helpers/env.js';
import { authorize, discover, loginAndExchange, makeClient, REDIRECT_URI } from '../helpers/rp.js';
import { startOnDatabase } from '../helpers/server.js';
import { ACCESS_TOKEN, CLIENT_SECRET } from '../helpers/shapes.js';

/**
 * Drives the compiled CLI (dist/src/cli/main.js) as an operator would: a separate process,
 * configured by environment, with stdin closed (no terminal), against a fresh database that a
 * real server may share.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
type Result = ProcessResult;

function run(command: string, args: string[], env: NodeJS.ProcessEnv, cwd = ROOT): Promise<Result> {
  return runProcess(command, args, { env, cwd });
}

const envFor = (db: TestDatabase): NodeJS.ProcessEnv => ({ ...process.env, DATABASE_URL: db.url, BCRYPT_COST: '10' });

/** `node dist/src/cli/main.js ...args` against `db`. */
const cli = (db: TestDatabase, ...args: string[]) => run(process.execPath, [MAIN, ...args], envFor(db));

const describeResult = (r: Result) => `exit ${r.code} (signal ${r.signal})\nstdout: ${JSON.stringify(r.stdout)}\nstderr: ${JSON.stringify(r.stderr)}`;

function expectSuccess(r: Result): void {
  expect(r.code, describeResult(r)).toBe(0);
  expect(r.stderr, describeResult(r)).toBe('');
}

/** A successful command that printed exactly one line of JSON; returns it parsed. */
function oneJsonLine(r: Result): unknown {
  expectSuccess(r);
  expect(r.stdout, describeResult(r)).toMatch(/^[^\n]+\n$/);
  return JSON.parse(r.stdout);
}

/** A failure the user can fix: non-zero exit, nothing on stdout, exactly one "error:" line on stderr. */
function expectOneLineError(r: Result, code: number, mentions: RegExp): void {
  expect(r.signal, describeResult(r)).toBeNull();
  expect(r.code, describeResult(r)).toBe(code);
  expect(r.stdout, describeResult(r)).toBe('');
  expect(r.stderr, describeResult(r)).toMatch(/^error: [^\n]+\n$/);
  expect(r.stderr).toMatch(mentions);
}

/** Every object key anywhere in a JSON value. */
function allKeys(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(allKeys);
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, inner]) => [key, ...allKeys(inner)]);
  }
  return [];
}

interface CreatedClient {
  client_id: string;
  client_secret?: string;
}

interface ListedClient {
  client_id: string;
  name: string;
  public: boolean;
  redirect_uris: string[];
  grant_types: string[];
  token_endpoint_auth_method: string;
  [other: string]: unknown;
}

const SUPERUSER = { username: 'Admin', email: 'Root@Example.com', password: 'correct horse battery staple' };

describe.each(BACKENDS)('CLI as a separate process (%s)', (backend) => {
  let db: TestDatabase;
  let running: RunningLatchkey | undefined;

  beforeEach(async () => {
    db = await freshDatabase(backend);
  });
  afterEach(async () => {
    await running?.close(1000);
    running = undefined;
    await db.drop();
  });

  const createSuperuser = (u = SUPERUSER) =>
    cli(db, 'createsuperuser', '--username', u.username, '--email', u.email, '--password', u.password);

  async function createClient(...args: string[]): Promise<CreatedClient> {
    return oneJsonLine(await cli(db, 'client', 'create', ...args, '--json')) as CreatedClient;
  }

  async function listClients(): Promise<{ raw: string; clients: ListedClient[] }> {
    const r = await cli(db, 'client', 'list', '--json');
    const clients = oneJsonLine(r);
    expect(Array.isArray(clients)).toBe(true);
    return { raw: r.stdout, clients: clients as ListedClient[] };
  }

  describe('migrate', () => {
    it('applies the migration on a fresh database, then reports it up to date', async () => {
      const first = await cli(db, 'migrate');
      expectSuccess(first);
      expect(first.stdout).toBe(`applied ${migrations.length} migration(s): ${migrations.map((m) => m.name).join(', ')}\n`);

      const second = await cli(db, 'migrate');
      expectSuccess(second);
      expect(second.stdout).toBe('database is up to date\n');
    });
  });

  describe('createsuperuser', () => {
    it('creates a user who can sign in through a real server on the same database', async () => {
      const created = await createSuperuser();
      expectSuccess(created);
      expect(created.stdout).toMatch(/^superuser "Admin" created with id \d+\n$/);

      running = await startOnDatabase(db);
      expect(await running.latchkey.storage.users.count()).toBe(1);
      const { client, clientSecret } = await makeClient(running.latchkey);
      const config = await discover(running.issuer, client.clientId, clientSecret);

      const { tokens } = await loginAndExchange(config, new UserAgent(), { username: SUPERUSER.username, password: SUPERUSER.password });
      const sub = tokens.claims()?.sub;
      expect(sub).toMatch(/^\d+$/);
      const info = await oidc.fetchUserInfo(config, tokens.access_token, sub ?? '');
      expect(info).toMatchObject({
        sub,
        preferred_username: 'Admin',
        email: 'root@example.com',
        email_verified: true,
      });
      const stored = await running.latchkey.storage.users.findById(sub ?? '');
      expect(stored).toMatchObject({ isStaff: true, isSuperuser: true, isActive: true });
      // Through the user service, as every account is made: its one audit entry, by the CLI.
      const { events } = await running.latchkey.services.audit.list({ offset: 0, limit: 10, event: 'user.created' });
      expect(events).toEqual([
        expect.objectContaining({
          actor: 'cli',
          actor_user_id: null,
          target_type: 'user',
          target_id: String(stored?.id),
          details: { username: 'Admin', is_staff: true, is_superuser: true, is_active: true },
        }),
      ]);

      // The password the CLI hashed is the one that works, and only that one.
      await expect(
        authorize(config, new UserAgent(), { username: SUPERUSER.username, password: 'not the password at all' }),
      ).rejects.toThrow(/login failed/);
    });

    it('refuses a duplicate username (in any case) or email with one error line', async () => {
      expectSuccess(await createSuperuser());

      const sameName = await createSuperuser({ ...SUPERUSER, email: 'other@example.com' });
      expectOneLineError(sameName, 1, /username/);
      const otherCase = await createSuperuser({ ...SUPERUSER, username: 'admin', email: 'other@example.com' });
      expectOneLineError(otherCase, 1, /username/);
      const sameEmail = await createSuperuser({ ...SUPERUSER, username: 'someone_else' });
      expectOneLineError(sameEmail, 1, /email/);
      const emailOtherCase = await createSuperuser({ ...SUPERUSER, username: 'someone_else', email: 'ROOT@example.COM' });
      expectOneLineError(emailOtherCase, 1, /email/);

      running = await startOnDatabase(db);
      expect(await running.latchkey.storage.users.count()).toBe(1);
    });

    it('needs --password when there is no terminal, and a long enough one', async () => {
      const missing = await cli(db, 'createsuperuser', '--username', 'alice', '--email', 'alice@example.com');
      expectOneLineError(missing, 1, /--password/);

      const short = await createSuperuser({ username: 'alice', email: 'alice@example.com', password: 'short' });
      expectOneLineError(short, 1, /^error: --password: Password must be at least 8 characters\.\n$/);
      // The user service's checks, under the options' names.
      const badEmail = await createSuperuser({ username: 'alice', email: 'not an address', password: 'a long enough password' });
      expectOneLineError(badEmail, 1, /^error: --email: /);
      const badName = await createSuperuser({ username: 'no spaces allowed', email: 'alice@example.com', password: 'a long enough password' });
      expectOneLineError(badName, 1, /^error: --username: /);

      running = await startOnDatabase(db);
      expect(await running.latchkey.storage.users.count()).toBe(0);
    });
  });

  describe('client', () => {
    it('creates a confidential client: one JSON line, default grants, listed without its secret', async () => {
      const created = await createClient('--name', 'Web App', '--redirect-uri', REDIRECT_URI);
      expect(Object.keys(created).sort()).toEqual(['client_id', 'client_secret']);
      expect(created.client_id).toMatch(/^[\w-]{16,}$/);
      expect(created.client_secret).toMatch(/^[\w-]{32,}$/);
      const secret = created.client_secret ?? '';

      const { raw, clients } = await listClients();
      expect(clients).toHaveLength(1);
      const listed = clients[0];
      expect(listed).toMatchObject({
        client_id: created.client_id,
        name: 'Web App',
        public: false,
        redirect_uris: [REDIRECT_URI],
        token_endpoint_auth_method: 'client_secret_basic',
      });
      expect([...(listed?.grant_types ?? [])].sort()).toEqual(['authorization_code', 'refresh_token']);

      // Neither the secret nor its stored hash ever leaves the database through the listing.
      expect(raw).not.toContain(secret);
      expect(raw).not.toContain(createHash('sha256').update(secret, 'utf8').digest('hex'));
      const keys = allKeys(clients);
      expect(keys.filter((k) => /secret|hash/i.test(k))).toEqual([]);
    });

    it('creates a public client with no secret and auth method none', async () => {
      const created = await createClient('--name', 'SPA', '--public', '--redirect-uri', REDIRECT_URI);
      expect(Object.keys(created)).toEqual(['client_id']);

      const { clients } = await listClients();
      expect(clients).toHaveLength(1);
      expect(clients[0]).toMatchObject({ client_id: created.client_id, public: true, token_endpoint_auth_method: 'none' });
    });

    it('lists every created client, and never a secret', async () => {
      const a = await createClient('--name', 'First', '--redirect-uri', REDIRECT_URI);
      const b = await createClient('--name', 'Second', '--public', '--redirect-uri', REDIRECT_URI);
      const c = await createClient('--name', 'Machine', '--grant-type', 'client_credentials');

      const { raw, clients } = await listClients();
      expect(clients.map((x) => x.client_id).sort()).toEqual([a.client_id, b.client_id, c.client_id].sort());
      expect(clients.map((x) => x.name).sort()).toEqual(['First', 'Machine', 'Second']);
      for (const secret of [a.client_secret, c.client_secret]) {
        expect(secret).toMatch(CLIENT_SECRET);
        expect(raw).not.toContain(secret);
      }
      expect(allKeys(clients).filter((k) => /secret|hash/i.test(k))).toEqual([]);
    });

    it('creates a client_credentials client whose printed credentials work against a real server', async () => {
      const created = await createClient('--name', 'Machine', '--grant-type', 'client_credentials');
      expect(created.client_secret).toMatch(CLIENT_SECRET);
      const { clients } = await listClients();
      expect(clients[0]?.grant_types).toEqual(['client_credentials']);

      running = await startOnDatabase(db);
      const config = await discover(running.issuer, created.client_id, created.client_secret ?? '');
      const tokens = await oidc.clientCredentialsGrant(config);
      expect(tokens.access_token).toMatch(ACCESS_TOKEN);
      expect(tokens.token_type.toLowerCase()).toBe('bearer');

      // The grant checks the secret: a wrong one is refused.
      const wrong = await discover(running.issuer, created.client_id, 'not-the-secret');
      const refused = await oidc.clientCredentialsGrant(wrong).then(
        () => null,
        (error: unknown) => error as { status?: number; cause?: Array<{ parameters?: Record<string, string> }> },
      );
      expect(refused?.status).toBe(401);
      expect(refused?.cause?.[0]?.parameters?.['error']).toBe('invalid_client');
    });

    it('rejects invalid redirect URIs, unknown grant types and a missing name with one error line', async () => {
      expectOneLineError(await cli(db, 'client', 'create', '--name', 'Bad', '--redirect-uri', 'not a url'), 1, /redirect/i);
      expectOneLineError(await cli(db, 'client', 'create', '--name', 'Bad', '--redirect-uri', 'https://x/cb#frag'), 1, /fragment/i);
      expectOneLineError(
        await cli(db, 'client', 'create', '--name', 'Bad', '--redirect-uri', REDIRECT_URI, '--grant-type', 'implicit'),
        1,
        /implicit/,
      );
      expectOneLineError(
        await cli(db, 'client', 'create', '--name', 'Bad', '--public', '--grant-type', 'client_credentials'),
        1,
        /public client/i,
      );
      // A refresh_token grant alone could never obtain its first token.
      expectOneLineError(
        await cli(db, 'client', 'create', '--name', 'Bad', '--redirect-uri', REDIRECT_URI, '--grant-type', 'refresh_token'),
        1,
        /refresh_token needs authorization_code/,
      );
      // The default grants (authorization_code) need somewhere to send the code.
      expectOneLineError(await cli(db, 'client', 'create', '--name', 'Bad'), 1, /redirect_uris/);
      expectOneLineError(await cli(db, 'client', 'create', '--redirect-uri', REDIRECT_URI), 1, /--name/);
      expectOneLineError(await cli(db, 'client', 'create', '--name', '   ', '--redirect-uri', REDIRECT_URI), 1, /--name/);

      // Nothing half-made was stored.
      const { clients } = await listClients();
      expect(clients).toEqual([]);
    });
  });

  describe('keys', () => {
    it('rotates keys that a running server picks up, keeping the retired ones published', async () => {
      running = await startOnDatabase(db, { KEY_REFRESH_SECONDS: '1' });
      const server = running;
      const jwks = async (): Promise<JWK[]> => {
        const response = await fetch(`${server.url}/o/jwks`);
        expect(response.status).toBe(200);
        return ((await response.json()) as { keys: JWK[] }).keys;
      };
      const before = (await jwks()).map((k) => k.kid ?? '');
      expect(before).toHaveLength(2);

      expectSuccess(await createSuperuser());
      const created = await createClient('--name', 'Keys App', '--redirect-uri', REDIRECT_URI);
      const login = { username: SUPERUSER.username, password: SUPERUSER.password };
      const old = await loginAndExchange(await discover(server.issuer, created.client_id, created.client_secret ?? ''), new UserAgent(), login);
      const oldIdToken = old.tokens.id_token ?? '';
      expect(before).toContain(decodeProtectedHeader(oldIdToken).kid);

      const rotated = oneJsonLine(await cli(db, 'keys', 'rotate', '--json')) as { added: string[]; retired: string[] };
      expect(Object.keys(rotated).sort()).toEqual(['added', 'retired']);
      expect([...rotated.retired].sort()).toEqual([...before].sort());
      expect(rotated.added).toHaveLength(2);
      expect(rotated.added.filter((kid) => before.includes(kid))).toEqual([]);

      const listed = oneJsonLine(await cli(db, 'keys', 'list', '--json')) as Array<{ kid: string; status: string }>;
      expect(listed.filter((k) => k.status === 'current').map((k) => k.kid).sort()).toEqual([...rotated.added].sort());
      expect(listed.filter((k) => k.status === 'previous').map((k) => k.kid).sort()).toEqual([...rotated.retired].sort());

      // The server notices the rotation on its own (KEY_REFRESH_SECONDS=1); give it up to 10 s.
      let published: JWK[] = [];
      const deadline = Date.now() + 10_000;
      for (;;) {
        published = await jwks();
        const kids = published.map((k) => k.kid);
        if (rotated.added.every((kid) => kids.includes(kid)) || Date.now() > deadline) break;
        await sleep(200);
      }
      const publishedKids = published.map((k) => k.kid);
      expect(publishedKids).toEqual(expect.arrayContaining(rotated.added));
      expect(publishedKids).toEqual(expect.arrayContaining(rotated.retired));
      // Only public halves are published.
      for (const key of published) expect(key).not.toHaveProperty('d');

      // A token signed before the rotation still verifies against what is published now.
      await expect(
        jwtVerify(oldIdToken, createLocalJWKSet({ keys: published }), { issuer: server.issuer, audience: created.client_id }),
      ).resolves.toMatchObject({ payload: { iss: server.issuer, aud: created.client_id } });

      // A fresh sign-in is signed with a new key.
      const config = await discover(server.issuer, created.client_id, created.client_secret ?? '');
      const fresh = await loginAndExchange(config, new UserAgent(), login);
      const kid = decodeProtectedHeader(fresh.tokens.id_token ?? '').kid;
      expect(rotated.added).toContain(kid);
    });
  });

  describe('cleanup', () => {
    it('prints counts as JSON', async () => {
      const r = await cli(db, 'cleanup', '--json');
      expect(oneJsonLine(r)).toEqual({ expired_rows_deleted: 0, api_refresh_tokens_deleted: 0, retired_keys_deleted: 0, email_tokens_deleted: 0 });
    });

    it('deletes expired OIDC rows and retired keys past their window, and reports how many', async () => {
      const created = await createClient('--name', 'Machine', '--grant-type', 'client_credentials');
      running = await startOnDatabase(db);
      const config = await discover(running.issuer, created.client_id, created.client_secret ?? '');
      await oidc.clientCredentialsGrant(config);
      await oidc.clientCredentialsGrant(config);
      const rotated = oneJsonLine(await cli(db, 'keys', 'rotate', '--json')) as { added: string[]; retired: string[] };

      // Age everything: the tokens expire and the retired keys' publication window closes.
      const knex = running.latchkey.storage.knex;
      const rows = Number((await knex('oidc_payloads').count<{ n: number }[]>({ n: '*' }).first())?.n ?? 0);
      expect(rows).toBeGreaterThanOrEqual(2);
      await knex('oidc_payloads').update({ expires_at: 1 });
      await knex('signing_keys').where({ status: 'previous' }).update({ expires_at: 1 });

      const first = oneJsonLine(await cli(db, 'cleanup', '--json'));
      expect(first).toEqual({ expired_rows_deleted: rows, api_refresh_tokens_deleted: 0, retired_keys_deleted: rotated.retired.length, email_tokens_deleted: 0 });
      const second = oneJsonLine(await cli(db, 'cleanup', '--json'));
      expect(second).toEqual({ expired_rows_deleted: 0, api_refresh_tokens_deleted: 0, retired_keys_deleted: 0, email_tokens_deleted: 0 });

      const left = oneJsonLine(await cli(db, 'keys', 'list', '--json')) as Array<{ kid: string }>;
      expect(left.map((k) => k.kid).sort()).toEqual([...rotated.added].sort());
    });
  });

  describe('usage', () => {
    it('exits 2 with one error line on an unknown command', async () => {
      expectOneLineError(await cli(db, 'frobnicate'), 2, /unknown command "frobnicate"/);
      expectOneLineError(await cli(db, 'client', 'frobnicate'), 2, /frobnicate/);
      expectOneLineError(await cli(db, 'client', 'create', '--name', 'X', '--no-such-option'), 2, /no-such-option/);
    });

    it('prints usage on stdout for help, exit 0', async () => {
      const r = await cli(db, 'help');
      expectSuccess(r);
      expect(r.stdout).toMatch(/^usage: /);
      for (const command of ['migrate', 'createsuperuser', 'client create', 'client list', 'keys rotate', 'cleanup']) {
        expect(r.stdout).toContain(command);
      }
    });
  });
});

describe('CLI through the documented npm script', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await freshDatabase('sqlite');
  });
  afterAll(async () => db?.drop());

  it('`npm run --silent cli -- client list --json` prints parseable JSON', { timeout: 120_000 }, async () => {
    const made = oneJsonLine(
      await cli(db, 'client', 'create', '--name', 'Via npm', '--redirect-uri', REDIRECT_URI, '--json'),
    ) as CreatedClient;

    // npm itself may warn on stderr about the local npm configuration; only stdout is ours.
    const r = await run('npm', ['run', '--silent', 'cli', '--', 'client', 'list', '--json'], envFor(db), ROOT);
    expect(r.code, describeResult(r)).toBe(0);
    const listed = JSON.parse(r.stdout) as ListedClient[];
    expect(listed.map((c) => c.client_id)).toEqual([made.client_id]);
    expect(r.stdout).not.toContain(made.client_secret);
  });
});
