import { expectInvalidTokenChallenge, type Answer, type ApiRequest } from './http.js';
import { randomBytes } from 'node:crypto';
import { beforeAll, expect } from 'vitest';
import type { NewUser, User } from '../../src/storage/users.js';
import { makeClient, PASSWORD } from './rp.js';
import { apiLogin as sharedApiLogin, type ApiPair, type ServerFixture } from './fixture.js';

/**
 * Shared by the users-api-*.test.ts suites. They test the user-management REST API (/api/users/, /auth/me/) over real HTTP, as its clients use
 * it: who may do what, mass assignment, IDOR, pagination/search/ordering, validation,
 * uniqueness, PUT/PATCH semantics, password changes and the revocation they cause.
 */

export type Json = Record<string, unknown>;

/** The API's user representation. */
export interface UserJson {
  id: number;
  username: string;
  email: string;
  first_name: string;
  last_name: string;
  is_active: boolean;
  is_staff: boolean;
  is_superuser: boolean;
  email_verified: boolean;
  pending_email: string | null;
  date_joined: string;
  last_login: string | null;
  updated_at: string;
}

export interface Page {
  count: number;
  next: string | null;
  previous: string | null;
  results: UserJson[];
}

export const NEW_PASSWORD = 'an entirely different passphrase';
export const ATTACKER_PASSWORD = 'attacker chosen passphrase';

/**
 * Every key, at any depth, of a JSON value, except the names in a validation error's
 * `fields` (which name the bad input, e.g. "password", and carry only messages).
 */
export function keysOf(value: unknown, out: string[] = [], inFields = false): string[] {
  if (Array.isArray(value)) for (const item of value) keysOf(item, out);
  else if (value && typeof value === 'object') {
    // An error body repeats each field's messages at the top level (DRF's shape): names of
    // fields, not data, like the keys under `fields`.
    const fieldNames = 'error' in value && 'fields' in value && value.fields && typeof value.fields === 'object' ? new Set(Object.keys(value.fields)) : new Set<string>();
    for (const [key, inner] of Object.entries(value)) {
      if (fieldNames.has(key)) {
        expect(inner).toEqual((value as { fields: Record<string, unknown> }).fields[key]);
        continue;
      }
      if (!inFields) out.push(key);
      keysOf(inner, out, !inFields && key === 'fields');
    }
  }
  return out;
}

export const asUser = (answer: Answer) => answer.json as unknown as UserJson;
export const asPage = (answer: Answer) => answer.json as unknown as Page;
export const fieldsOf = (answer: Answer) => (answer.json['fields'] ?? {}) as Record<string, string[]>;

/** The users API suites' fixtures: users and tokens of each role, a leak-checking API caller, and the checks they share. */
export function useUsersApi(fx: ServerFixture) {
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
    return fx.server.latchkey.storage.users.create({
      username: name,
      email: `${name}@example.com`,
      passwordHash,
      firstName: 'Ada',
      lastName: 'Lovelace',
      emailVerified: true,
      ...overrides,
    });
  }

  const row = (id: number) => fx.server.latchkey.storage.users.findById(id);

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
  const expectInvalidToken = expectInvalidTokenChallenge;

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
    const { storage: { users }, services: { hasher } } = fx.server.latchkey;
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

  return {
    get passwordHash() {
      return passwordHash;
    },
    get attackerHash() {
      return attackerHash;
    },
    get staff() {
      return staff;
    },
    get staffToken() {
      return staffToken;
    },
    get superuser() {
      return superuser;
    },
    get superToken() {
      return superToken;
    },
    get other() {
      return other;
    },
    get otherToken() {
      return otherToken;
    },
    get machine() {
      return machine;
    },
    get seq() {
      return seq;
    },
    api,
    fixtureUser,
    oauthLogin,
    expectRefreshRefused,
    expectInvalidToken,
    clientCredentialsToken,
    unique,
    row,
    tokenAnswer,
    apiLogin,
    refreshAnswer,
    userinfo,
  };
}
