import { runProcess, type ProcessResult } from './process.js';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { beforeAll, expect } from 'vitest';
import type { User } from '../../src/storage/users.js';
import { expectInvalidTokenChallenge, type Answer, type ApiRequest } from './http.js';
import { apiResourceOf, makeClient, makeUser } from './rp.js';
import { apiLogin as sharedApiLogin, type ServerFixture } from './fixture.js';

/**
 * Shared by the clients-api-*.test.ts suites. They test the clients REST API (/api/clients/)
 * and dynamic client registration (RFC 7591 at /o/reg, RFC 7592 at /o/reg/<id>) over real HTTP: who may manage clients, what the API accepts,
 * that a secret is shown exactly once and stored only as its SHA-256, that rotation and
 * deletion take effect at the token endpoint at once, and the registration policy.
 */

export type Json = Record<string, unknown>;

/** The API's client representation (a secret only in answers that create one). */
export interface ClientJson {
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
  /** The API resources whose tokens it may introspect as their resource server. */
  resource_server_for: string[];
  built_in: boolean;
  created_at: string;
  updated_at: string;
  client_secret?: string;
}

export interface Page {
  count: number;
  next: string | null;
  previous: string | null;
  results: ClientJson[];
}

export const CLIENT_KEYS = [
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
  'resource_server_for',
  'built_in',
  'created_at',
  'updated_at',
].sort();

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const CLI_MAIN = path.join(ROOT, 'dist/src/cli/main.js');

export const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex');
export const asClient = (answer: Answer) => answer.json as unknown as ClientJson;
export const asPage = (answer: Answer) => answer.json as unknown as Page;
export const fieldsOf = (answer: Answer) => (answer.json['fields'] ?? {}) as Record<string, string[]>;
export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

export type CliResult = ProcessResult;

/** `node dist/src/cli/main.js ...args` as an operator runs it: own process, no terminal. */
export function runCli(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  return runProcess(process.execPath, [CLI_MAIN, ...args], { env, cwd: ROOT });
}

export interface InitialAccessToken {
  initial_access_token: string;
  expires_in: number | null;
  registration_endpoint: string;
}

/** The clients API suites' fixtures: staff, a plain user and a machine client with their tokens, a caller that checks no answer leaks a stored secret hash, and the checks they share. */
export function useClientsApi(fx: ServerFixture) {
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
    const row = (await fx.server.latchkey.storage.knex('clients').where({ client_id: clientId }).first()) as Json | undefined;
    if (typeof row?.['client_secret_hash'] === 'string') knownHashes.add(row['client_secret_hash']);
    return row;
  }

  async function dbSecretHash(clientId: string): Promise<string | null | undefined> {
    const row = (await fx.server.latchkey.storage.knex('clients').select('client_secret_hash').where({ client_id: clientId }).first()) as
      | { client_secret_hash: string | null }
      | undefined;
    if (row?.client_secret_hash) knownHashes.add(row.client_secret_hash);
    return row ? row.client_secret_hash : undefined;
  }

  const clientCount = async () => Number(((await fx.server.latchkey.storage.knex('clients').count({ n: '*' })) as Array<{ n: number | string }>)[0]?.n);

  /** Rows the provider stored for a client (tokens, codes, grants, registration tokens). */
  const issuedCount = async (clientId: string) =>
    Number(((await fx.server.latchkey.storage.knex('oidc_payloads').where({ client_id: clientId }).count({ n: '*' })) as Array<{ n: number | string }>)[0]?.n);

  /** The row holds the SHA-256 of `secret` and the secret itself appears nowhere in it. */
  async function expectStoredAsHash(clientId: string, secret: string): Promise<void> {
    expect(await dbSecretHash(clientId)).toBe(sha256(secret));
    expect(await dbSecretHash(clientId)).toMatch(/^[0-9a-f]{64}$/);
    const row = await dbRow(clientId);
    expect(JSON.stringify(row)).not.toContain(secret);
    const payloads = (await fx.server.latchkey.storage.knex('oidc_payloads').select('payload')) as Array<{ payload: string }>;
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
  const expectUnauthenticated = expectInvalidTokenChallenge;

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

  return {
    get staff() {
      return staff;
    },
    get staffToken() {
      return staffToken;
    },
    get plain() {
      return plain;
    },
    get plainToken() {
      return plainToken;
    },
    get machine() {
      return machine;
    },
    get machineToken() {
      return machineToken;
    },
    get bareMachineToken() {
      return bareMachineToken;
    },
    get seq() {
      return seq;
    },
    learnSecret,
    api,
    dbRow,
    dbSecretHash,
    expectStoredAsHash,
    createClient,
    clientCredentials,
    expectToken,
    expectInvalidClient,
    expectUnauthenticated,
    createIat,
    knownHashes,
    unique,
    clientCount,
    issuedCount,
    apiLogin,
    cliEnv,
  };
}
