import { runProcess, type ProcessResult } from '../helpers/process.js';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUILT_IN_CLIENT_IDS } from '../../src/core/clients/client-service.js';
import type { User } from '../../src/storage/users.js';
import { UserAgent } from '../helpers/browserless.js';
import type { Answer, ApiRequest } from '../helpers/http.js';
import { apiResourceOf, discover, loginAndExchange, makeClient, makeUser, PASSWORD, POST_LOGOUT_URI, REDIRECT_URI } from '../helpers/rp.js';
import { apiLogin as sharedApiLogin, describeOnBackends } from '../helpers/fixture.js';

/**
 * The clients REST API (/api/clients/) and dynamic client registration (RFC 7591 at /o/reg,
 * RFC 7592 at /o/reg/<id>) over real HTTP: who may manage clients, what the API accepts,
 * that a secret is shown exactly once and stored only as its SHA-256, that rotation and
 * deletion take effect at the token endpoint at once, and the registration policy.
 */

type Json = Record<string, unknown>;

/** The API's client representation (a secret only in answers that create one). */
interface ClientJson {
  client_id: string;
  client_name: string;
  client_type: 'public' | 'confidential';
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: string[];
  scope: string;
  token_endpoint_auth_method: string;
  /** The scopes of our REST API staff registered the client for. */
  api_scopes: string[];
  built_in: boolean;
  created_at: string;
  updated_at: string;
  client_secret?: string;
}

interface Page {
  count: number;
  next: string | null;
  previous: string | null;
  results: ClientJson[];
}

const CLIENT_KEYS = [
  'client_id',
  'client_name',
  'client_type',
  'redirect_uris',
  'post_logout_redirect_uris',
  'grant_types',
  'scope',
  'token_endpoint_auth_method',
  'backchannel_logout_uri',
  'dpop_bound_access_tokens',
  'jwks',
  'jwks_uri',
  'require_pushed_authorization_requests',
  'require_signed_request_object',
  'api_scopes',
  'built_in',
  'created_at',
  'updated_at',
].sort();

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI_MAIN = path.join(ROOT, 'dist/src/cli/main.js');

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex');
const asClient = (answer: Answer) => answer.json as unknown as ClientJson;
const asPage = (answer: Answer) => answer.json as unknown as Page;
const fieldsOf = (answer: Answer) => (answer.json['fields'] ?? {}) as Record<string, string[]>;
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

type CliResult = ProcessResult;

/** `node dist/src/cli/main.js ...args` as an operator runs it: own process, no terminal. */
function runCli(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  return runProcess(process.execPath, [CLI_MAIN, ...args], { env, cwd: ROOT });
}

interface InitialAccessToken {
  initial_access_token: string;
  expires_in: number | null;
  registration_endpoint: string;
}

describeOnBackends('clients REST API and dynamic registration over HTTP (%s)', (fx) => {
  let staff: User;
  let staffToken: string;
  let plain: User;
  let plainToken: string;
  /**
   * A client_credentials client made outside the API and registered for the `admin` API
   * scope, for a token that acts for no user: `machineToken` is issued for our REST API with
   * that scope (so only "no user" refuses it), `bareMachineToken` for no resource at all.
   */
  let machine: { id: string; secret: string };
  let machineToken: string;
  let bareMachineToken: string;
  let seq = 0;
  /**
   * Every client secret hash this test has seen (computed from a secret it was shown, or
   * read from the database): no HTTP answer may ever contain one.
   */
  const knownHashes = new Set<string>();

  const unique = (prefix = 'App') => `${prefix} ${++seq} ${randomBytes(3).toString('hex')}`;

  function learnSecret(secret: string | undefined): void {
    if (secret) knownHashes.add(sha256(secret));
  }

  /** One HTTP call; every answer is checked for stored secret hashes. */
  async function api(
    method: string,
    path: string,
    opts: ApiRequest = {},
  ): Promise<Answer> {
    const answer = await fx.api(method, path, opts);
    expect(answer.text, `${method} ${path} mentions the secret column`).not.toContain('client_secret_hash');
    for (const hash of knownHashes) expect(answer.text, `${method} ${path} leaked a stored secret hash`).not.toContain(hash);
    return answer;
  }

  /** The clients row as stored. */
  async function dbRow(clientId: string): Promise<Json | undefined> {
    const row = (await fx.server.latchkey.knex('clients').where({ client_id: clientId }).first()) as Json | undefined;
    if (typeof row?.['client_secret_hash'] === 'string') knownHashes.add(row['client_secret_hash']);
    return row;
  }

  async function dbSecretHash(clientId: string): Promise<string | null | undefined> {
    const row = (await fx.server.latchkey.knex('clients').select('client_secret_hash').where({ client_id: clientId }).first()) as
      | { client_secret_hash: string | null }
      | undefined;
    if (row?.client_secret_hash) knownHashes.add(row.client_secret_hash);
    return row ? row.client_secret_hash : undefined;
  }

  const clientCount = async () => Number(((await fx.server.latchkey.knex('clients').count({ n: '*' })) as Array<{ n: number | string }>)[0]?.n);

  /** Rows the provider stored for a client (tokens, codes, grants, registration tokens). */
  const issuedCount = async (clientId: string) =>
    Number(((await fx.server.latchkey.knex('oidc_payloads').where({ client_id: clientId }).count({ n: '*' })) as Array<{ n: number | string }>)[0]?.n);

  /** The row holds the SHA-256 of `secret` and the secret itself appears nowhere in it. */
  async function expectStoredAsHash(clientId: string, secret: string): Promise<void> {
    expect(await dbSecretHash(clientId)).toBe(sha256(secret));
    expect(await dbSecretHash(clientId)).toMatch(/^[0-9a-f]{64}$/);
    const row = await dbRow(clientId);
    expect(JSON.stringify(row)).not.toContain(secret);
    const payloads = (await fx.server.latchkey.knex('oidc_payloads').select('payload')) as Array<{ payload: string }>;
    for (const { payload } of payloads) expect(payload).not.toContain(secret);
  }

  /** POST /api/clients/ as staff; expects 201 and returns the created client (with its secret, if any). */
  async function createClient(body: Json): Promise<ClientJson> {
    const answer = await api('POST', '/api/clients/', { token: staffToken, json: body });
    expect(answer.status, answer.text).toBe(201);
    const client = asClient(answer);
    learnSecret(client.client_secret);
    return client;
  }

  /**
   * The token endpoint's client_credentials grant, authenticating with Basic or in the form
   * body; `params` adds e.g. `resource` and `scope`.
   */
  function clientCredentials(id: string, secret: string, how: 'basic' | 'post' = 'basic', params: Record<string, string> = {}): Promise<Answer> {
    const form: Record<string, string> = { grant_type: 'client_credentials', ...params };
    if (how === 'post') return api('POST', `${fx.server.issuer}/token`, { form: { ...form, client_id: id, client_secret: secret } });
    return api('POST', `${fx.server.issuer}/token`, { form, authorization: basic(id, secret) });
  }

  function expectToken(answer: Answer): string {
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json['access_token']).toEqual(expect.any(String));
    expect(answer.json['token_type']).toBe('Bearer');
    return answer.json['access_token'] as string;
  }

  function expectInvalidClient(answer: Answer): void {
    expect(answer.status, answer.text).toBe(401);
    expect(answer.json['error']).toBe('invalid_client');
    expect(answer.json['access_token']).toBeUndefined();
  }

  /** A 401 from our API with the RFC 6750 challenge. */
  function expectUnauthenticated(answer: Answer): void {
    expect(answer.status, answer.text).toBe(401);
    expect(answer.headers.get('www-authenticate') ?? '').toMatch(/^Bearer /);
    expect(answer.headers.get('www-authenticate') ?? '').toContain('error="invalid_token"');
    expect(answer.json['error']).toBe('invalid_token');
  }

  const apiLogin = async (username: string): Promise<string> => (await sharedApiLogin(api, username)).access;

  const cliEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    ...process.env,
    DATABASE_URL: fx.server.db.url,
    BCRYPT_COST: '10',
    ...extra,
  });

  /** `cli iat create --json [--expires-in S]` against the server's database. */
  async function createIat(args: string[] = [], extra: Record<string, string> = {}): Promise<InitialAccessToken> {
    const result = await runCli(cliEnv(extra), 'iat', 'create', '--json', ...args);
    const described = `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;
    expect(result.code, described).toBe(0);
    expect(result.stderr, described).toBe('');
    expect(result.stdout, described).toMatch(/^[^\n]+\n$/);
    const parsed = JSON.parse(result.stdout) as InitialAccessToken;
    expect(parsed.initial_access_token).toEqual(expect.any(String));
    return parsed;
  }

  beforeAll(async () => {
    staff = await makeUser(fx.server.latchkey, { username: `staff_${randomBytes(3).toString('hex')}`, isStaff: true });
    plain = await makeUser(fx.server.latchkey);
    [staffToken, plainToken] = await Promise.all([apiLogin(staff.username), apiLogin(plain.username)]);
    const made = await makeClient(fx.server.latchkey, {
      name: 'Machine',
      redirectUris: [],
      postLogoutRedirectUris: [],
      grantTypes: ['client_credentials'],
      apiScopes: ['admin'],
    });
    machine = { id: made.client.clientId, secret: made.clientSecret ?? '' };
    learnSecret(machine.secret);
    machineToken = expectToken(await clientCredentials(machine.id, machine.secret, 'basic', { resource: apiResourceOf(fx.server.latchkey), scope: 'admin' }));
    expect(decodeJwt(machineToken)).toMatchObject({ sub: machine.id, client_id: machine.id, aud: apiResourceOf(fx.server.latchkey), scope: 'admin' });
    bareMachineToken = expectToken(await clientCredentials(machine.id, machine.secret));
  });

  // ----------------------------------------------------------------- permission matrix

  describe('who may manage clients', () => {
    /**
     * `machine`: a client_credentials token for our API with the `admin` scope, which acts
     * for the client alone (403 permission_denied); `bare-machine`: one for no resource,
     * which reaches no REST route (403 insufficient_scope).
     */
    type Role = 'anonymous' | 'garbage' | 'user' | 'machine' | 'bare-machine' | 'staff';
    const ROLES: Role[] = ['anonymous', 'garbage', 'user', 'machine', 'bare-machine', 'staff'];
    const REFUSED: Record<Exclude<Role, 'staff'>, number> = { anonymous: 401, garbage: 401, user: 403, machine: 403, 'bare-machine': 403 };

    interface RouteCase {
      route: string;
      method: string;
      path: (id: string) => string;
      body?: () => Json;
      /** Whether the path names a target client (whose row a refusal must leave alone). */
      targeted: boolean;
      ok: number;
    }

    const ROUTES: RouteCase[] = [
      { route: 'GET /api/clients/', method: 'GET', path: () => '/api/clients/', targeted: false, ok: 200 },
      {
        route: 'POST /api/clients/',
        method: 'POST',
        path: () => '/api/clients/',
        body: () => ({ client_name: unique('Matrix'), redirect_uris: [REDIRECT_URI] }),
        targeted: false,
        ok: 201,
      },
      { route: 'GET /api/clients/<id>/', method: 'GET', path: (id) => `/api/clients/${id}/`, targeted: true, ok: 200 },
      {
        route: 'PATCH /api/clients/<id>/',
        method: 'PATCH',
        path: (id) => `/api/clients/${id}/`,
        body: () => ({ client_name: 'Patched', redirect_uris: ['https://evil.example/cb'] }),
        targeted: true,
        ok: 200,
      },
      { route: 'DELETE /api/clients/<id>/', method: 'DELETE', path: (id) => `/api/clients/${id}/`, targeted: true, ok: 204 },
      {
        route: 'POST /api/clients/<id>/rotate-secret/',
        method: 'POST',
        path: (id) => `/api/clients/${id}/rotate-secret/`,
        targeted: true,
        ok: 200,
      },
    ];

    const MATRIX = ROUTES.flatMap((c) => ROLES.map((role) => ({ ...c, role, status: role === 'staff' ? c.ok : REFUSED[role] })));

    it.each(MATRIX)('$route as $role -> $status', async ({ method, path, body, targeted, role, status, route }) => {
      const target = await createClient({ client_name: unique('Target'), redirect_uris: [REDIRECT_URI] });
      const before = await dbRow(target.client_id);
      const countBefore = await clientCount();
      const tokens: Record<Role, string | undefined> = {
        anonymous: undefined,
        garbage: 'not-a-real-token',
        user: plainToken,
        machine: machineToken,
        'bare-machine': bareMachineToken,
        staff: staffToken,
      };
      const payload = body?.();
      const answer = await api(method, path(target.client_id), { token: tokens[role], json: payload });
      expect(answer.status, answer.text).toBe(status);

      if (status >= 400) {
        expect(answer.json['client_secret']).toBeUndefined();
        expect(answer.json['error']).toEqual(expect.any(String));
        expect(answer.json['error_description']).toEqual(expect.any(String));
        if (status === 401) expectUnauthenticated(answer);
        if (status === 403 && role === 'bare-machine') {
          expect(answer.json['error']).toBe('insufficient_scope');
          expect(answer.headers.get('www-authenticate') ?? '').toMatch(/^Bearer error="insufficient_scope".*scope="admin"/);
        } else if (status === 403) {
          expect(answer.json['error']).toBe('permission_denied');
        }
        expect(answer.headers.get('cache-control')).toBe('no-store');
        expect(answer.json['results']).toBeUndefined();
        if (targeted) expect(await dbRow(target.client_id)).toEqual(before);
        expect(await clientCount()).toBe(countBefore);
        return;
      }
      // Staff.
      if (route === 'GET /api/clients/') {
        expect(asPage(answer).count).toBe(countBefore);
        expect(asPage(answer).results.every((c) => c.client_secret === undefined)).toBe(true);
      } else if (method === 'POST' && !targeted) {
        const created = asClient(answer);
        expect(created.client_name).toBe(payload?.['client_name']);
        expect(answer.headers.get('location')).toBe(`/api/clients/${created.client_id}/`);
        expect(created.client_secret).toEqual(expect.any(String));
        learnSecret(created.client_secret);
        expect(await clientCount()).toBe(countBefore + 1);
      } else if (method !== 'POST') {
        expect(answer.json['client_secret']).toBeUndefined();
      }
      if (route === 'GET /api/clients/<id>/') {
        const { client_secret: _secret, ...shown } = target;
        expect(answer.json).toEqual(shown);
      } else if (method === 'PATCH') {
        expect(asClient(answer)).toMatchObject({ client_id: target.client_id, client_name: 'Patched', redirect_uris: ['https://evil.example/cb'] });
      } else if (method === 'DELETE') {
        expect(answer.text).toBe('');
        expect(await dbRow(target.client_id)).toBeUndefined();
      } else if (targeted) {
        // rotate-secret
        const secret = asClient(answer).client_secret ?? '';
        learnSecret(secret);
        expect(await dbSecretHash(target.client_id)).toBe(sha256(secret));
        expect(await dbSecretHash(target.client_id)).not.toBe(before?.['client_secret_hash']);
      }
    });

    it('serves every route with and without the trailing slash', async () => {
      const listed = await api('GET', '/api/clients', { token: staffToken });
      expect(listed.status, listed.text).toBe(200);
      expect(asPage(listed).count).toBe(await clientCount());

      const created = await api('POST', '/api/clients', { token: staffToken, json: { client_name: unique('NoSlash'), redirect_uris: [REDIRECT_URI] } });
      expect(created.status, created.text).toBe(201);
      const client = asClient(created);
      learnSecret(client.client_secret);
      expect((await api('GET', `/api/clients/${client.client_id}`, { token: staffToken })).status).toBe(200);
      const patched = await api('PATCH', `/api/clients/${client.client_id}`, { token: staffToken, json: { client_name: 'No slash' } });
      expect(patched.status, patched.text).toBe(200);
      for (const rotatePath of [`/api/clients/${client.client_id}/rotate-secret`, `/api/clients/${client.client_id}/rotate-secret/`]) {
        const rotated = await api('POST', rotatePath, { token: staffToken });
        expect(rotated.status, `${rotatePath}: ${rotated.text}`).toBe(200);
        learnSecret(asClient(rotated).client_secret);
      }
      expect((await api('DELETE', `/api/clients/${client.client_id}`, { token: staffToken })).status).toBe(204);
      expect(await dbRow(client.client_id)).toBeUndefined();
      // Unauthenticated without the slash is refused just the same.
      expectUnauthenticated(await api('GET', '/api/clients'));
      expect((await api('GET', '/api/clients', { token: plainToken })).status).toBe(403);
    });
  });

  // ---------------------------------------------------------------------- create & read

  describe('creating and reading clients', () => {
    it('creates a confidential client: the secret is shown once and stored only as its SHA-256', async () => {
      const answer = await api('POST', '/api/clients/', {
        token: staffToken,
        json: { client_name: '  Billing  ', redirect_uris: [REDIRECT_URI], post_logout_redirect_uris: [POST_LOGOUT_URI] },
      });
      expect(answer.status, answer.text).toBe(201);
      expect(answer.headers.get('cache-control')).toContain('no-store');
      const client = asClient(answer);
      const secret = client.client_secret ?? '';
      learnSecret(secret);
      expect(Object.keys(client).sort()).toEqual([...CLIENT_KEYS, 'client_secret'].sort());
      expect(client).toMatchObject({
        client_name: 'Billing',
        client_type: 'confidential',
        redirect_uris: [REDIRECT_URI],
        post_logout_redirect_uris: [POST_LOGOUT_URI],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'client_secret_basic',
        built_in: false,
      });
      expect(secret.length).toBeGreaterThanOrEqual(43);
      expect(answer.headers.get('location')).toBe(`/api/clients/${client.client_id}/`);

      await expectStoredAsHash(client.client_id, secret);

      const read = await api('GET', `/api/clients/${client.client_id}/`, { token: staffToken });
      expect(read.status, read.text).toBe(200);
      expect(read.json['client_secret']).toBeUndefined();
      expect(read.text).not.toContain(secret);
      const { client_secret: _shownOnce, ...withoutSecret } = client;
      expect(read.json).toEqual(withoutSecret);

      const list = await api('GET', '/api/clients/?page_size=100', { token: staffToken });
      expect(list.status).toBe(200);
      expect(list.text).not.toContain(secret);
      const listed = asPage(list).results.find((c) => c.client_id === client.client_id);
      expect(listed).toEqual(withoutSecret);
      for (const c of asPage(list).results) expect(Object.keys(c).sort()).toEqual(CLIENT_KEYS);
    });

    it('creates a public client without a secret', async () => {
      const client = await createClient({ client_name: unique('Spa'), redirect_uris: [REDIRECT_URI], client_type: 'public' });
      expect(client.client_secret).toBeUndefined();
      expect(client).toMatchObject({ client_type: 'public', token_endpoint_auth_method: 'none' });
      expect(await dbSecretHash(client.client_id)).toBeNull();
      const read = await api('GET', `/api/clients/${client.client_id}/`, { token: staffToken });
      expect(asClient(read)).toMatchObject({ client_type: 'public', token_endpoint_auth_method: 'none' });
    });

    it('creates a client_credentials-only client without redirect URIs', async () => {
      const client = await createClient({ client_name: unique('Daemon'), grant_types: ['client_credentials'] });
      expect(client).toMatchObject({ grant_types: ['client_credentials'], redirect_uris: [], client_type: 'confidential' });
      expectToken(await clientCredentials(client.client_id, client.client_secret ?? ''));
    });

    it('keeps api_scopes: set on create, read back, changed and cleared with PATCH', async () => {
      const apiResource = apiResourceOf(fx.server.latchkey);
      /** The API scopes a client_credentials token for our API gets when it asks for all of them. */
      const grantedScopes = async (client: ClientJson) => {
        const answer = await clientCredentials(client.client_id, client.client_secret ?? '', 'basic', { resource: apiResource, scope: 'users:read users:write account admin' });
        expect(answer.status, answer.text).toBe(200);
        return String(decodeJwt(answer.json['access_token'] as string)['scope'] ?? '').split(' ').filter(Boolean).sort();
      };
      const storedApiScopes = async (clientId: string) => {
        const metadata = JSON.parse(String((await dbRow(clientId))?.['metadata'])) as Json;
        return metadata['api_scopes'];
      };
      const read = async (clientId: string) => {
        const answer = await api('GET', `/api/clients/${clientId}/`, { token: staffToken });
        expect(answer.status, answer.text).toBe(200);
        return asClient(answer);
      };

      // A client created without them has none.
      const plainClient = await createClient({ client_name: unique('Unscoped'), redirect_uris: [REDIRECT_URI] });
      expect(plainClient.api_scopes).toEqual([]);
      expect((await read(plainClient.client_id)).api_scopes).toEqual([]);

      const client = await createClient({ client_name: unique('Scoped'), grant_types: ['client_credentials'], api_scopes: ['users:read', 'admin'] });
      expect([...client.api_scopes].sort()).toEqual(['admin', 'users:read']);
      expect([...(await read(client.client_id)).api_scopes].sort()).toEqual(['admin', 'users:read']);
      const listed = asPage(await api('GET', '/api/clients/?page_size=100', { token: staffToken })).results.find((c) => c.client_id === client.client_id);
      expect([...(listed?.api_scopes ?? [])].sort()).toEqual(['admin', 'users:read']);
      expect(String(await storedApiScopes(client.client_id)).split(' ').sort()).toEqual(['admin', 'users:read']);
      // What staff registered is what the client's API tokens can carry, and no more.
      expect(await grantedScopes(client)).toEqual(['admin', 'users:read']);

      // A PATCH that does not mention them keeps them.
      const renamed = await api('PATCH', `/api/clients/${client.client_id}/`, { token: staffToken, json: { client_name: 'Scoped, renamed' } });
      expect(renamed.status, renamed.text).toBe(200);
      expect([...asClient(renamed).api_scopes].sort()).toEqual(['admin', 'users:read']);

      // PATCH replaces them.
      const changed = await api('PATCH', `/api/clients/${client.client_id}/`, { token: staffToken, json: { api_scopes: ['account'] } });
      expect(changed.status, changed.text).toBe(200);
      expect(changed.json['client_secret']).toBeUndefined();
      expect(asClient(changed)).toMatchObject({ client_id: client.client_id, client_name: 'Scoped, renamed', grant_types: ['client_credentials'], api_scopes: ['account'] });
      expect((await read(client.client_id)).api_scopes).toEqual(['account']);
      expect(await storedApiScopes(client.client_id)).toBe('account');
      expect(await grantedScopes(client)).toEqual(['account']);

      // And an empty list clears them: the client gets no API scope at all.
      const cleared = await api('PATCH', `/api/clients/${client.client_id}/`, { token: staffToken, json: { api_scopes: [] } });
      expect(cleared.status, cleared.text).toBe(200);
      expect(asClient(cleared).api_scopes).toEqual([]);
      expect((await read(client.client_id)).api_scopes).toEqual([]);
      expect(await storedApiScopes(client.client_id)).toBeUndefined();
      expect(await grantedScopes(client)).toEqual([]);
      // The secret survived every change.
      expect(await dbSecretHash(client.client_id)).toBe(sha256(client.client_secret ?? ''));
    });

    it('refuses an unknown API scope with 400 invalid_client_metadata, on create and on change', async () => {
      const target = await createClient({ client_name: unique('Scoped'), redirect_uris: [REDIRECT_URI], api_scopes: ['users:read'] });
      const before = await dbRow(target.client_id);
      const count = await clientCount();
      // The old single `api` scope, a made-up one next to a real one, an OpenID scope, another case.
      for (const apiScopes of [['api'], ['users:read', 'superuser'], ['openid'], ['Admin']]) {
        const created = await api('POST', '/api/clients/', { token: staffToken, json: { client_name: unique('Bad'), redirect_uris: [REDIRECT_URI], api_scopes: apiScopes } });
        expect(created.status, `POST ${JSON.stringify(apiScopes)}: ${created.text}`).toBe(400);
        expect(created.json['error']).toBe('invalid_client_metadata');
        expect(String(created.json['error_description'])).toMatch(/api_scopes/);
        expect(created.json['client_id']).toBeUndefined();
        expect(created.json['client_secret']).toBeUndefined();

        const patched = await api('PATCH', `/api/clients/${target.client_id}/`, { token: staffToken, json: { api_scopes: apiScopes } });
        expect(patched.status, `PATCH ${JSON.stringify(apiScopes)}: ${patched.text}`).toBe(400);
        expect(patched.json['error']).toBe('invalid_client_metadata');
      }
      expect(await clientCount()).toBe(count);
      expect(await dbRow(target.client_id)).toEqual(before);
      expect(asClient(await api('GET', `/api/clients/${target.client_id}/`, { token: staffToken })).api_scopes).toEqual(['users:read']);
    });

    interface BadCase {
      name: string;
      body: unknown;
      error: string | RegExp;
      /** The `fields` keys a field-level problem reports. */
      fields?: string[];
    }

    const BAD: BadCase[] = [
      { name: 'missing client_name', body: { redirect_uris: [REDIRECT_URI] }, error: 'invalid_request', fields: ['client_name'] },
      { name: 'blank client_name', body: { client_name: '   ', redirect_uris: [REDIRECT_URI] }, error: 'invalid_request', fields: ['client_name'] },
      { name: 'non-string client_name', body: { client_name: 42 }, error: 'invalid_request', fields: ['client_name'] },
      { name: 'redirect URI that is not a URL', body: { client_name: 'Bad', redirect_uris: ['not a url'] }, error: /^invalid_(redirect_uri|client_metadata)$/ },
      {
        name: 'redirect URI with a fragment',
        body: { client_name: 'Bad', redirect_uris: ['https://app.example.com/cb#fragment'] },
        error: /^invalid_(redirect_uri|client_metadata)$/,
      },
      { name: 'unknown grant type', body: { client_name: 'Bad', redirect_uris: [REDIRECT_URI], grant_types: ['implicit'] }, error: 'invalid_client_metadata' },
      {
        name: 'refresh_token without a grant that issues one',
        body: { client_name: 'Bad', grant_types: ['client_credentials', 'refresh_token'] },
        error: 'invalid_client_metadata',
      },
      {
        name: 'public client with client_credentials',
        body: { client_name: 'Bad', grant_types: ['client_credentials'], client_type: 'public' },
        error: 'invalid_client_metadata',
      },
      {
        name: 'client_secret chosen by the caller (unknown field)',
        body: { client_name: 'Bad', redirect_uris: [REDIRECT_URI], client_secret: 'my own secret' },
        error: 'invalid_request',
        fields: ['client_secret'],
      },
      {
        name: 'client_id and built_in (read-only fields)',
        body: { client_name: 'Bad', redirect_uris: [REDIRECT_URI], client_id: 'latchkey-admin-2', built_in: true },
        error: 'invalid_request',
        fields: ['built_in', 'client_id'],
      },
      { name: 'redirect_uris not an array', body: { client_name: 'Bad', redirect_uris: REDIRECT_URI }, error: 'invalid_request', fields: ['redirect_uris'] },
      { name: 'redirect_uris with a non-string', body: { client_name: 'Bad', redirect_uris: [REDIRECT_URI, 7] }, error: 'invalid_request', fields: ['redirect_uris'] },
      { name: 'grant_types not an array', body: { client_name: 'Bad', grant_types: 'client_credentials' }, error: 'invalid_request', fields: ['grant_types'] },
      { name: "client_type 'x'", body: { client_name: 'Bad', redirect_uris: [REDIRECT_URI], client_type: 'x' }, error: 'invalid_request', fields: ['client_type'] },
      { name: 'scope not a string', body: { client_name: 'Bad', redirect_uris: [REDIRECT_URI], scope: ['openid'] }, error: 'invalid_request', fields: ['scope'] },
      { name: 'api_scopes not an array', body: { client_name: 'Bad', redirect_uris: [REDIRECT_URI], api_scopes: 'admin' }, error: 'invalid_request', fields: ['api_scopes'] },
      {
        name: 'api_scopes with a non-string',
        body: { client_name: 'Bad', redirect_uris: [REDIRECT_URI], api_scopes: ['admin', 1] },
        error: 'invalid_request',
        fields: ['api_scopes'],
      },
      {
        name: 'several bad fields at once',
        body: { redirect_uris: 'x', client_type: 'x', extra: 1 },
        error: 'invalid_request',
        fields: ['client_name', 'client_type', 'extra', 'redirect_uris'],
      },
    ];

    it.each(BAD)('refuses $name with 400', async ({ body, error, fields }) => {
      const before = await clientCount();
      const answer = await api('POST', '/api/clients/', { token: staffToken, json: body });
      expect(answer.status, answer.text).toBe(400);
      if (typeof error === 'string') expect(answer.json['error']).toBe(error);
      else expect(answer.json['error']).toMatch(error);
      expect(answer.json['error_description']).toEqual(expect.any(String));
      expect(answer.json['client_id']).toBeUndefined();
      expect(answer.json['client_secret']).toBeUndefined();
      if (fields) {
        expect(Object.keys(fieldsOf(answer)).sort()).toEqual([...fields].sort());
        for (const messages of Object.values(fieldsOf(answer))) expect(messages).toEqual([expect.any(String)]);
      }
      expect(await clientCount()).toBe(before);
    });

    it('refuses a body that is not JSON, or not an object', async () => {
      const before = await clientCount();
      for (const raw of ['{"client_name": ', '["a"]', '"text"']) {
        const answer = await api('POST', '/api/clients/', { token: staffToken, raw });
        expect(answer.status, `${raw}: ${answer.text}`).toBe(400);
        expect(answer.json['error']).toBe('invalid_request');
      }
      expect(await clientCount()).toBe(before);
    });

    it('answers 404 for an unknown client id on every route', async () => {
      for (const [method, path, json] of [
        ['GET', '/api/clients/no-such-client/'],
        ['PATCH', '/api/clients/no-such-client/', { client_name: 'Ghost' }],
        ['DELETE', '/api/clients/no-such-client/'],
        ['POST', '/api/clients/no-such-client/rotate-secret/'],
      ] as Array<[string, string, Json?]>) {
        const answer = await api(method, path, { token: staffToken, json });
        expect(answer.status, `${method} ${path}: ${answer.text}`).toBe(404);
        expect(answer.json['error']).toBe('not_found');
      }
      expect(await dbRow('no-such-client')).toBeUndefined();
    });

    it('paginates as {count, next, previous, results}', async () => {
      for (let i = 0; i < 3; i++) await createClient({ client_name: unique('Page'), redirect_uris: [REDIRECT_URI] });
      const total = await clientCount();
      expect(total).toBeGreaterThanOrEqual(5);

      const first = await api('GET', '/api/clients/?page_size=2', { token: staffToken });
      expect(first.status, first.text).toBe(200);
      expect(Object.keys(first.json).sort()).toEqual(['count', 'next', 'previous', 'results']);
      expect(asPage(first)).toMatchObject({ count: total, previous: null });
      expect(asPage(first).results).toHaveLength(2);
      const next = new URL(asPage(first).next ?? '');
      expect(next.origin + next.pathname).toBe(`${fx.server.url}/api/clients/`);
      expect(Object.fromEntries(next.searchParams)).toEqual({ page: '2', page_size: '2' });

      const second = await api('GET', asPage(first).next ?? '', { token: staffToken });
      expect(second.status, second.text).toBe(200);
      expect(asPage(second).count).toBe(total);
      expect(asPage(second).results).toHaveLength(2);
      expect(new URL(asPage(second).previous ?? '').searchParams.get('page')).toBe('1');
      const firstIds = asPage(first).results.map((c) => c.client_id);
      for (const c of asPage(second).results) expect(firstIds).not.toContain(c.client_id);

      const lastPage = Math.ceil(total / 2);
      const last = await api('GET', `/api/clients/?page_size=2&page=${lastPage}`, { token: staffToken });
      expect(asPage(last).next).toBeNull();
      expect(asPage(last).results).toHaveLength(total - (lastPage - 1) * 2);

      // All pages together are every client exactly once, built-in ones included.
      const all = await api('GET', '/api/clients/?page_size=100', { token: staffToken });
      const ids = asPage(all).results.map((c) => c.client_id);
      expect(ids).toHaveLength(total);
      expect(new Set(ids).size).toBe(total);
      for (const id of BUILT_IN_CLIENT_IDS) expect(ids).toContain(id);

      expect((await api('GET', `/api/clients/?page_size=2&page=${lastPage + 1}`, { token: staffToken })).status).toBe(404);
      for (const query of ['page=0', 'page=abc', 'page_size=-1']) {
        const bad = await api('GET', `/api/clients/?${query}`, { token: staffToken });
        expect(bad.status, `${query}: ${bad.text}`).toBe(400);
        expect(bad.json['error']).toBe('invalid_request');
      }
    });
  });

  // ----------------------------------------------------------------------------- update

  describe('updating clients', () => {
    it('PATCH renames and replaces redirect URIs, keeping the secret', async () => {
      const client = await createClient({ client_name: unique('Old'), redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] });
      const hashBefore = await dbSecretHash(client.client_id);
      const uris = ['https://app.example.com/callback', 'http://127.0.0.1:9999/cb'];
      const answer = await api('PATCH', `/api/clients/${client.client_id}/`, { token: staffToken, json: { client_name: 'Renamed App', redirect_uris: uris } });
      expect(answer.status, answer.text).toBe(200);
      expect(answer.json['client_secret']).toBeUndefined();
      expect(asClient(answer)).toMatchObject({
        client_id: client.client_id,
        client_name: 'Renamed App',
        redirect_uris: uris,
        client_type: 'confidential',
        grant_types: client.grant_types,
        post_logout_redirect_uris: client.post_logout_redirect_uris,
        created_at: client.created_at,
      });
      const read = asClient(await api('GET', `/api/clients/${client.client_id}/`, { token: staffToken }));
      expect(read).toMatchObject({ client_name: 'Renamed App', redirect_uris: uris });
      expect(await dbSecretHash(client.client_id)).toBe(hashBefore);
      // The secret still works.
      expectToken(await clientCredentials(client.client_id, client.client_secret ?? ''));
    });

    it('PATCH validates like POST and leaves the client alone when it refuses', async () => {
      const client = await createClient({ client_name: unique('Strict'), redirect_uris: [REDIRECT_URI] });
      const before = await dbRow(client.client_id);
      for (const [json, error, fields] of [
        [{ client_name: '' }, 'invalid_request', ['client_name']],
        [{ redirect_uris: 'https://x.example/cb' }, 'invalid_request', ['redirect_uris']],
        [{ client_type: 'x' }, 'invalid_request', ['client_type']],
        [{ client_secret: 'chosen' }, 'invalid_request', ['client_secret']],
        [{ redirect_uris: ['https://app.example.com/cb#frag'] }, /^invalid_(redirect_uri|client_metadata)$/, undefined],
        [{ grant_types: ['urn:example:unknown'] }, 'invalid_client_metadata', undefined],
      ] as Array<[Json, string | RegExp, string[] | undefined]>) {
        const answer = await api('PATCH', `/api/clients/${client.client_id}/`, { token: staffToken, json });
        expect(answer.status, `${JSON.stringify(json)}: ${answer.text}`).toBe(400);
        if (typeof error === 'string') expect(answer.json['error']).toBe(error);
        else expect(answer.json['error']).toMatch(error);
        if (fields) expect(Object.keys(fieldsOf(answer)).sort()).toEqual(fields);
      }
      expect(await dbRow(client.client_id)).toEqual(before);
    });

    it('PATCH confidential -> public drops the secret', async () => {
      const client = await createClient({ client_name: unique('ToPublic'), redirect_uris: [REDIRECT_URI] });
      const secret = client.client_secret ?? '';
      const answer = await api('PATCH', `/api/clients/${client.client_id}/`, { token: staffToken, json: { client_type: 'public' } });
      expect(answer.status, answer.text).toBe(200);
      expect(answer.json['client_secret']).toBeUndefined();
      expect(asClient(answer)).toMatchObject({ client_type: 'public', token_endpoint_auth_method: 'none', client_name: client.client_name });
      expect(await dbSecretHash(client.client_id)).toBeNull();
      // The old secret no longer authenticates the client.
      expectInvalidClient(
        await api('POST', `${fx.server.issuer}/token`, {
          form: { grant_type: 'refresh_token', refresh_token: 'whatever' },
          authorization: basic(client.client_id, secret),
        }),
      );
    });

    it('PATCH confidential -> public is refused while the client uses client_credentials', async () => {
      const client = await createClient({ client_name: unique('Daemon'), grant_types: ['client_credentials'] });
      const answer = await api('PATCH', `/api/clients/${client.client_id}/`, { token: staffToken, json: { client_type: 'public' } });
      expect(answer.status, answer.text).toBe(400);
      expect(answer.json['error']).toBe('invalid_client_metadata');
      expect(await dbSecretHash(client.client_id)).toBe(sha256(client.client_secret ?? ''));
    });

    it('PATCH public -> confidential returns a new secret, once, that works', async () => {
      const client = await createClient({ client_name: unique('ToConfidential'), redirect_uris: [REDIRECT_URI], client_type: 'public' });
      const answer = await api('PATCH', `/api/clients/${client.client_id}/`, {
        token: staffToken,
        json: { client_type: 'confidential', grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] },
      });
      expect(answer.status, answer.text).toBe(200);
      expect(answer.headers.get('cache-control')).toContain('no-store');
      const secret = asClient(answer).client_secret ?? '';
      learnSecret(secret);
      expect(secret.length).toBeGreaterThanOrEqual(43);
      expect(asClient(answer)).toMatchObject({ client_type: 'confidential', token_endpoint_auth_method: 'client_secret_basic' });
      await expectStoredAsHash(client.client_id, secret);
      expectToken(await clientCredentials(client.client_id, secret));
      const read = await api('GET', `/api/clients/${client.client_id}/`, { token: staffToken });
      expect(read.json['client_secret']).toBeUndefined();
      expect(read.text).not.toContain(secret);
      // A PATCH that keeps the type shows no secret.
      const again = await api('PATCH', `/api/clients/${client.client_id}/`, { token: staffToken, json: { client_type: 'confidential' } });
      expect(again.status).toBe(200);
      expect(again.json['client_secret']).toBeUndefined();
      expect(await dbSecretHash(client.client_id)).toBe(sha256(secret));
    });

    it('refuses to rotate the secret of a public client', async () => {
      const client = await createClient({ client_name: unique('Spa'), redirect_uris: [REDIRECT_URI], client_type: 'public' });
      const answer = await api('POST', `/api/clients/${client.client_id}/rotate-secret/`, { token: staffToken });
      expect(answer.status, answer.text).toBe(400);
      expect(answer.json['client_secret']).toBeUndefined();
      expect(await dbSecretHash(client.client_id)).toBeNull();
    });
  });

  // ------------------------------------------------------------------------- built-ins

  describe('built-in clients', () => {
    it.each([...BUILT_IN_CLIENT_IDS])('%s can be read but not changed, rotated or deleted', async (id) => {
      const before = await dbRow(id);
      expect(before).toBeDefined();
      const read = await api('GET', `/api/clients/${id}/`, { token: staffToken });
      expect(read.status, read.text).toBe(200);
      expect(asClient(read)).toMatchObject({ client_id: id, built_in: true });
      expect(read.json['client_secret']).toBeUndefined();
      for (const [method, path, json] of [
        ['PATCH', `/api/clients/${id}/`, { client_name: 'Hijacked' }],
        ['PATCH', `/api/clients/${id}/`, { redirect_uris: ['https://evil.example/cb'] }],
        ['PATCH', `/api/clients/${id}/`, { client_type: 'confidential' }],
        ['POST', `/api/clients/${id}/rotate-secret/`],
        ['DELETE', `/api/clients/${id}/`],
      ] as Array<[string, string, Json?]>) {
        const answer = await api(method, path, { token: staffToken, json });
        expect(answer.status, `${method} ${path} ${JSON.stringify(json)}: ${answer.text}`).toBe(403);
        expect(answer.json['error']).toBe('permission_denied');
        expect(answer.json['client_secret']).toBeUndefined();
      }
      expect(await dbRow(id)).toEqual(before);
    });
  });

  // ------------------------------------------------------------ secrets at /o/token

  describe('client secrets at the token endpoint', () => {
    it('rotation invalidates the old secret at once; the new one works', async () => {
      const client = await createClient({ client_name: unique('Rotating'), grant_types: ['client_credentials'] });
      const oldSecret = client.client_secret ?? '';
      expectToken(await clientCredentials(client.client_id, oldSecret, 'basic'));
      expectToken(await clientCredentials(client.client_id, oldSecret, 'post'));

      const rotated = await api('POST', `/api/clients/${client.client_id}/rotate-secret/`, { token: staffToken });
      expect(rotated.status, rotated.text).toBe(200);
      expect(rotated.headers.get('cache-control')).toContain('no-store');
      const newSecret = asClient(rotated).client_secret ?? '';
      learnSecret(newSecret);
      expect(newSecret.length).toBeGreaterThanOrEqual(43);
      expect(newSecret).not.toBe(oldSecret);
      expect(asClient(rotated)).toMatchObject({ client_id: client.client_id, client_name: client.client_name, grant_types: ['client_credentials'] });
      await expectStoredAsHash(client.client_id, newSecret);

      expectInvalidClient(await clientCredentials(client.client_id, oldSecret, 'basic'));
      expectInvalidClient(await clientCredentials(client.client_id, oldSecret, 'post'));
      expectToken(await clientCredentials(client.client_id, newSecret, 'basic'));
      expectToken(await clientCredentials(client.client_id, newSecret, 'post'));

      const read = await api('GET', `/api/clients/${client.client_id}/`, { token: staffToken });
      expect(read.json['client_secret']).toBeUndefined();
    });

    it('a hashed-secret client authenticates with client_secret_basic and client_secret_post; a wrong secret fails for both', async () => {
      const client = await createClient({ client_name: unique('BothWays'), grant_types: ['client_credentials'] });
      const secret = client.client_secret ?? '';
      expectToken(await clientCredentials(client.client_id, secret, 'basic'));
      expectToken(await clientCredentials(client.client_id, secret, 'post'));
      for (const wrong of [`${secret}x`, secret.slice(0, -1), 'wrong', sha256(secret)]) {
        expectInvalidClient(await clientCredentials(client.client_id, wrong, 'basic'));
        expectInvalidClient(await clientCredentials(client.client_id, wrong, 'post'));
      }
      // The stored hash is no password either, and neither is another client's secret.
      expectInvalidClient(await clientCredentials(client.client_id, machine.secret, 'basic'));
      expectInvalidClient(await clientCredentials(client.client_id, machine.secret, 'post'));
    });
  });

  // --------------------------------------------------------------------- deletion

  describe('deleting a client', () => {
    it("revokes its users' access and refresh tokens", async () => {
      const client = await createClient({ client_name: unique('Doomed'), redirect_uris: [REDIRECT_URI] });
      const secret = client.client_secret ?? '';
      const user = await makeUser(fx.server.latchkey);
      const config = await discover(fx.server.issuer, client.client_id, secret);
      const { tokens } = await loginAndExchange(config, new UserAgent(), { username: user.username, password: PASSWORD }, { scope: 'openid profile email offline_access', prompt: 'consent' });
      expect(tokens.access_token).toEqual(expect.any(String));
      expect(tokens.refresh_token).toEqual(expect.any(String));
      const userinfo = (token: string) => api('GET', `${fx.server.issuer}/me`, { token });

      const before = await userinfo(tokens.access_token);
      expect(before.status, before.text).toBe(200);
      expect(before.json['sub']).toBe(String(user.id));
      expect((await api('GET', '/auth/me/', { token: tokens.access_token })).status).toBe(200);
      expect(await issuedCount(client.client_id)).toBeGreaterThan(0);
      const row = await dbRow(client.client_id);

      const deleted = await api('DELETE', `/api/clients/${client.client_id}/`, { token: staffToken });
      expect(deleted.status, deleted.text).toBe(204);
      expect(deleted.text).toBe('');
      expect(await dbRow(client.client_id)).toBeUndefined();
      expect(await issuedCount(client.client_id)).toBe(0);

      expect((await userinfo(tokens.access_token)).status).toBe(401);
      expectUnauthenticated(await api('GET', '/auth/me/', { token: tokens.access_token }));
      const refresh = () =>
        api('POST', `${fx.server.issuer}/token`, {
          form: { grant_type: 'refresh_token', refresh_token: tokens.refresh_token ?? '' },
          authorization: basic(client.client_id, secret),
        });
      expectInvalidClient(await refresh());
      expect((await api('GET', `/api/clients/${client.client_id}/`, { token: staffToken })).status).toBe(404);
      expect((await api('DELETE', `/api/clients/${client.client_id}/`, { token: staffToken })).status).toBe(404);

      // Even a client re-created under the same id and secret finds the tokens dead: they
      // were revoked, not merely orphaned.
      await fx.server.latchkey.knex('clients').insert(row);
      const refused = await refresh();
      expect(refused.status, refused.text).toBe(400);
      expect(refused.json['error']).toBe('invalid_grant');
      expect((await userinfo(tokens.access_token)).status).toBe(401);
      expectUnauthenticated(await api('GET', '/auth/me/', { token: tokens.access_token }));
      await fx.server.latchkey.knex('clients').where({ client_id: client.client_id }).delete();
    });
  });

  // ---------------------------------------------------------- dynamic registration

  describe('dynamic client registration (RFC 7591 / 7592)', () => {
    let iat: InitialAccessToken;
    const regEndpoint = () => `${fx.server.issuer}/reg`;

    /** POST /o/reg with the suite's IAT, another bearer token, or (null) none at all. */
    const register = (metadata: Json, token: string | null = iat.initial_access_token) =>
      api('POST', regEndpoint(), { json: metadata, ...(token === null ? {} : { token }) });

    /** A successful registration: the answer and the secret it showed once. */
    async function registered(metadata: Json) {
      const answer = await register(metadata);
      expect(answer.status, answer.text).toBe(201);
      const body = answer.json;
      expect(body['client_id']).toEqual(expect.any(String));
      expect(body['client_secret']).toEqual(expect.any(String));
      expect(body['registration_access_token']).toEqual(expect.any(String));
      expect(body['registration_client_uri']).toBe(`${fx.server.issuer}/reg/${String(body['client_id'])}`);
      learnSecret(body['client_secret'] as string);
      return {
        answer,
        clientId: body['client_id'] as string,
        secret: body['client_secret'] as string,
        rat: body['registration_access_token'] as string,
        uri: body['registration_client_uri'] as string,
      };
    }

    beforeAll(async () => {
      iat = await createIat([], { PUBLIC_URL: fx.server.url });
      expect(iat.registration_endpoint).toBe(regEndpoint());
      expect(iat.expires_in).toBeNull();
    });

    it('refuses registration without an initial access token, or with a bad one', async () => {
      const before = await clientCount();
      const metadata = { client_name: 'Intruder', grant_types: ['client_credentials'], response_types: [] };
      const missing = await register(metadata, null);
      expect([400, 401], missing.text).toContain(missing.status);
      expect(missing.json['error']).toEqual(expect.any(String));
      expect(missing.json['client_id']).toBeUndefined();

      for (const token of ['garbage', staffToken, machineToken]) {
        const bad = await register(metadata, token);
        expect(bad.status, bad.text).toBe(401);
        expect(bad.json['error']).toBe('invalid_token');
        expect(bad.headers.get('www-authenticate') ?? '').toMatch(/^Bearer /);
        expect(bad.json['client_id']).toBeUndefined();
      }
      expect(await clientCount()).toBe(before);
    });

    it('registers a client_credentials client with an IAT from the CLI; it is an ordinary, hashed client', async () => {
      const name = unique('Registered');
      const { answer, clientId, secret } = await registered({
        client_name: name,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      });
      expect(answer.json).toMatchObject({ client_name: name, grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' });
      expect(answer.headers.get('cache-control')).toContain('no-store');
      await expectStoredAsHash(clientId, secret);
      // Neither the registration access token is kept in the clients row.
      expect(JSON.stringify(await dbRow(clientId))).not.toContain(answer.json['registration_access_token'] as string);

      const list = await api('GET', '/api/clients/?page_size=100', { token: staffToken });
      const listed = asPage(list).results.find((c) => c.client_id === clientId);
      expect(listed).toMatchObject({ client_id: clientId, client_name: name, client_type: 'confidential', grant_types: ['client_credentials'], built_in: false });
      expect(listed?.client_secret).toBeUndefined();
      expect(list.text).not.toContain(secret);
      const one = await api('GET', `/api/clients/${clientId}/`, { token: staffToken });
      expect(one.status).toBe(200);
      expect(one.json['client_secret']).toBeUndefined();

      expectToken(await clientCredentials(clientId, secret, 'basic'));
      expectToken(await clientCredentials(clientId, secret, 'post'));
      expectInvalidClient(await clientCredentials(clientId, `${secret}x`, 'basic'));
    });

    it('registers an authorization_code client with redirect URIs that signs a user in', async () => {
      const { clientId, secret } = await registered({
        client_name: unique('Registered RP'),
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      });
      await expectStoredAsHash(clientId, secret);
      const user = await makeUser(fx.server.latchkey);
      const config = await discover(fx.server.issuer, clientId, secret);
      const { tokens } = await loginAndExchange(config, new UserAgent(), { username: user.username, password: PASSWORD });
      const info = await api('GET', `${fx.server.issuer}/me`, { token: tokens.access_token });
      expect(info.status, info.text).toBe(200);
      expect(info.json['sub']).toBe(String(user.id));
    });

    it('registers a client that asks for ES256 ID tokens: they are ES256 and verify against /o/jwks', async () => {
      const { clientId, secret } = await registered({
        client_name: unique('ES256 RP'),
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        id_token_signed_response_alg: 'ES256',
      });
      const user = await makeUser(fx.server.latchkey);
      const config = await discover(fx.server.issuer, clientId, secret);
      const { tokens } = await loginAndExchange(config, new UserAgent(), { username: user.username, password: PASSWORD });
      const jwks = createRemoteJWKSet(new URL(`${fx.server.issuer}/jwks`));
      const { protectedHeader, payload } = await jwtVerify(tokens.id_token!, jwks, { issuer: fx.server.issuer, audience: clientId, algorithms: ['ES256'] });
      expect(protectedHeader.alg).toBe('ES256');
      expect(payload.sub).toBe(String(user.id));
      // The default stays RS256 for everyone else.
      const rsClient = await makeClient(fx.server.latchkey, { name: unique('RS256 RP') });
      const rsConfig = await discover(fx.server.issuer, rsClient.client.clientId, rsClient.clientSecret);
      const rs = await loginAndExchange(rsConfig, new UserAgent(), { username: user.username, password: PASSWORD });
      expect((await jwtVerify(rs.tokens.id_token!, jwks, { algorithms: ['RS256'] })).protectedHeader.alg).toBe('RS256');
    });

    it('refuses an ID token algorithm it has no key for', async () => {
      const answer = await register({ client_name: unique('PS384 RP'), redirect_uris: [REDIRECT_URI], id_token_signed_response_alg: 'HS256' });
      expect(answer.status, answer.text).toBe(400);
      expect(answer.json['error']).toBe('invalid_client_metadata');
    });

    interface RefusedCase {
      name: string;
      metadata: Json;
      mentions: RegExp;
      /** The error code; invalid_client_metadata unless given. */
      error?: string;
    }

    const REFUSED: RefusedCase[] = [
      { name: 'the password grant (our policy)', metadata: { grant_types: ['password'], response_types: [] }, mentions: /grant_types/ },
      {
        name: 'the password grant next to allowed ones',
        metadata: { grant_types: ['authorization_code', 'password'], response_types: ['code'], redirect_uris: [REDIRECT_URI] },
        mentions: /grant_types/,
      },
      {
        name: 'token_endpoint_auth_method client_secret_jwt',
        metadata: { grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_jwt' },
        mentions: /token_endpoint_auth_method/,
      },
      {
        name: 'id_token_signed_response_alg HS256',
        metadata: { redirect_uris: [REDIRECT_URI], id_token_signed_response_alg: 'HS256' },
        mentions: /id_token_signed_response_alg/,
      },
      {
        name: 'token_endpoint_auth_signing_alg HS256',
        metadata: { grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'HS256', jwks: { keys: [] } },
        mentions: /token_endpoint_auth_signing_alg/,
      },
      {
        name: 'api_scopes (staff grant them, never registration)',
        metadata: { grant_types: ['client_credentials'], response_types: [], api_scopes: 'admin' },
        mentions: /api_scopes/,
      },
      {
        name: 'an unknown api_scopes value',
        metadata: { grant_types: ['client_credentials'], response_types: [], api_scopes: 'api' },
        mentions: /api_scopes/,
      },
      {
        name: 'a redirect URI with a fragment',
        metadata: { redirect_uris: ['https://app.example.com/cb#frag'] },
        mentions: /fragment/,
        error: 'invalid_redirect_uri',
      },
    ];

    it.each(REFUSED)('refuses $name with 400 and stores nothing', async ({ metadata, mentions, error = 'invalid_client_metadata' }) => {
      const before = await clientCount();
      const answer = await register({ client_name: unique('Refused'), ...metadata });
      expect(answer.status, answer.text).toBe(400);
      expect(answer.json['error']).toBe(error);
      expect(String(answer.json['error_description'])).toMatch(mentions);
      expect(answer.json['client_id']).toBeUndefined();
      expect(answer.json['client_secret']).toBeUndefined();
      expect(await clientCount()).toBe(before);
    });

    it('an IAT created with --expires-in 1 stops working once it expires', async () => {
      // The CLI gets only DATABASE_URL, as an operator would run it.
      const shortLived = await createIat(['--expires-in', '1']);
      expect(shortLived.expires_in).toBe(1);
      await sleep(2500);
      const before = await clientCount();
      const answer = await register({ client_name: unique('Late'), grant_types: ['client_credentials'], response_types: [] }, shortLived.initial_access_token);
      expect(answer.status, answer.text).toBe(401);
      expect(answer.json['error']).toBe('invalid_token');
      expect(answer.json['client_id']).toBeUndefined();
      expect(await clientCount()).toBe(before);
      // The long-lived one still works.
      await registered({ client_name: unique('OnTime'), grant_types: ['client_credentials'], response_types: [] });
    });

    it('manages the registration (RFC 7592): read without the secret, update, delete', async () => {
      const { clientId, secret, rat, uri } = await registered({
        client_name: unique('Managed'),
        grant_types: ['client_credentials'],
        response_types: [],
      });
      const storedHash = await dbSecretHash(clientId);
      expect(storedHash).toBe(sha256(secret));

      // Read: 200 and no client_secret, neither the secret nor its stored hash.
      expect((await api('GET', uri)).status).toBe(401);
      expect((await api('GET', uri, { token: 'garbage' })).status).toBe(401);
      expect((await api('GET', uri, { token: iat.initial_access_token })).status).toBe(401);
      const read = await api('GET', uri, { token: rat });
      expect(read.status, read.text).toBe(200);
      expect(read.json['client_id']).toBe(clientId);
      expect(read.json).not.toHaveProperty('client_secret');
      expect(read.json).not.toHaveProperty('client_secret_expires_at');
      expect(read.text).not.toContain(secret);
      expect(read.text).not.toContain(storedHash);

      // Update: the read body sent back with a new name (minus what RFC 7592 forbids).
      const newName = unique('Managed renamed');
      const {
        registration_access_token: _rat,
        registration_client_uri: _uri,
        client_secret_expires_at: _exp,
        client_id_issued_at: _issued,
        ...current
      } = read.json;
      // Our policy holds for updates too: no password grant.
      const sneaky = await api('PUT', uri, { token: rat, json: { ...current, grant_types: ['client_credentials', 'password'] } });
      expect(sneaky.status, sneaky.text).toBe(400);
      expect(sneaky.json['error']).toBe('invalid_client_metadata');
      expect(asClient(await api('GET', `/api/clients/${clientId}/`, { token: staffToken })).grant_types).toEqual(['client_credentials']);
      // Nor can the client grant itself scopes of our REST API.
      const selfGranted = await api('PUT', uri, { token: rat, json: { ...current, api_scopes: 'users:read users:write account admin' } });
      expect(selfGranted.status, selfGranted.text).toBe(400);
      expect(selfGranted.json['error']).toBe('invalid_client_metadata');
      expect(asClient(await api('GET', `/api/clients/${clientId}/`, { token: staffToken })).api_scopes).toEqual([]);

      const updated = await api('PUT', uri, { token: rat, json: { ...current, client_name: newName } });
      expect(updated.status, updated.text).toBe(200);
      expect(updated.json['client_name']).toBe(newName);
      expect(updated.json).not.toHaveProperty('client_secret');
      expect(updated.text).not.toContain(secret);
      expect(updated.text).not.toContain(storedHash);
      const nextRat = (updated.json['registration_access_token'] as string | undefined) ?? rat;

      const viaApi = await api('GET', `/api/clients/${clientId}/`, { token: staffToken });
      expect(viaApi.status).toBe(200);
      expect(asClient(viaApi)).toMatchObject({ client_id: clientId, client_name: newName, client_type: 'confidential' });
      // The update kept the secret (and stored nothing new in its place).
      expect(await dbSecretHash(clientId)).toBe(storedHash);
      expectToken(await clientCredentials(clientId, secret));

      // Delete: 204, and the client is gone everywhere.
      const removed = await api('DELETE', uri, { token: nextRat });
      expect(removed.status, removed.text).toBe(204);
      expect((await api('GET', `/api/clients/${clientId}/`, { token: staffToken })).status).toBe(404);
      const list = await api('GET', '/api/clients/?page_size=100', { token: staffToken });
      expect(asPage(list).results.map((c) => c.client_id)).not.toContain(clientId);
      expect(await dbRow(clientId)).toBeUndefined();
      expectInvalidClient(await clientCredentials(clientId, secret));
      expect((await api('GET', uri, { token: nextRat })).status).toBe(401);
    });

    it('RFC 7592 PUT accepts the current client_secret in the body (RFC 7592 section 2.2) and refuses a wrong one', async () => {
      const { clientId, secret, rat, uri } = await registered({
        client_name: unique('Echoing'),
        grant_types: ['client_credentials'],
        response_types: [],
      });
      const storedHash = await dbSecretHash(clientId);
      const read = await api('GET', uri, { token: rat });
      expect(read.status, read.text).toBe(200);
      const {
        registration_access_token: _rat,
        registration_client_uri: _uri,
        client_secret_expires_at: _exp,
        client_id_issued_at: _issued,
        ...current
      } = read.json;

      const wrong = await api('PUT', uri, { token: rat, json: { ...current, client_secret: 'not the secret', client_name: 'Wrong' } });
      expect(wrong.status, wrong.text).toBe(400);
      expect(wrong.json['error']).toBe('invalid_request');

      // "If the client includes the client_secret field in the request, the value of this
      // field MUST match the currently issued client secret for that client."
      const newName = unique('Echoed');
      const updated = await api('PUT', uri, { token: rat, json: { ...current, client_secret: secret, client_name: newName } });
      expect(updated.status, `PUT with the client's own current secret: ${updated.text}`).toBe(200);
      expect(updated.json['client_name']).toBe(newName);
      expect(updated.json).not.toHaveProperty('client_secret');
      expect(await dbSecretHash(clientId)).toBe(storedHash);
      expectToken(await clientCredentials(clientId, secret));
    });

    it('RFC 7592 DELETE revokes what the client was issued, as DELETE /api/clients/<id>/ does', async () => {
      const { clientId, secret, rat, uri } = await registered({
        client_name: unique('Registered doomed'),
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      });
      const user = await makeUser(fx.server.latchkey);
      const config = await discover(fx.server.issuer, clientId, secret);
      const { tokens } = await loginAndExchange(config, new UserAgent(), { username: user.username, password: PASSWORD });
      expect((await api('GET', '/auth/me/', { token: tokens.access_token })).status).toBe(200);

      const removed = await api('DELETE', uri, { token: rat });
      expect(removed.status, removed.text).toBe(204);
      expect(await dbRow(clientId)).toBeUndefined();
      expect((await api('GET', `${fx.server.issuer}/me`, { token: tokens.access_token })).status).toBe(401);
      // The user's token must not outlive the client at our own API either, and nothing the
      // client was issued may stay behind.
      const me = await api('GET', '/auth/me/', { token: tokens.access_token });
      expect.soft(me.status, `GET /auth/me/ with a token of a client deleted via RFC 7592: ${me.text}`).toBe(401);
      expect.soft(me.headers.get('www-authenticate') ?? '').toContain('error="invalid_token"');
      expect.soft(await issuedCount(clientId), 'oidc_payloads rows left for the deleted client').toBe(0);
    });
  });
});
