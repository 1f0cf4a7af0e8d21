import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { beforeAll, describe, expect, it } from 'vitest';
import type { User } from '../../src/storage/users.js';
import { API_SCOPES } from '../../src/core/resources/built-in.js';
import { UserAgent } from '../helpers/browserless.js';
import { type Answer } from '../helpers/http.js';
import { runProcess, type ProcessResult } from '../helpers/process.js';
import { apiAuthorization, apiResourceOf, discover, loginAndExchange, makeClient, makeUser, PASSWORD } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';

/**
 * API resources managed over REST (/api/resources/, staff only) and by the CLI (`resource
 * create|list|delete`, as separate processes on the server's database): who may do what,
 * validation per field, 409 on a taken identifier, the built-in REST API resource (listed,
 * read-only), and the audit trail.
 */

type Json = Record<string, unknown>;

interface ResourceJson {
  id: number;
  identifier: string;
  name: string;
  scopes: string[];
  access_token_ttl: number;
  access_token_format: 'jwt' | 'opaque';
  built_in: boolean;
  created_at: string | null;
  updated_at: string | null;
}

const RESOURCE_KEYS = ['id', 'identifier', 'name', 'scopes', 'access_token_ttl', 'access_token_format', 'built_in', 'created_at', 'updated_at'].sort();

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI_MAIN = path.join(ROOT, 'dist/src/cli/main.js');

const asResource = (answer: Answer) => answer.json as unknown as ResourceJson;
const fieldsOf = (answer: Answer) => (answer.json['fields'] ?? {}) as Record<string, string[]>;
const describeRun = (r: ProcessResult) => `exit ${r.code} (signal ${r.signal})\nstdout: ${JSON.stringify(r.stdout)}\nstderr: ${JSON.stringify(r.stderr)}`;

describeOnBackends('API resources over REST and the CLI (%s)', (fx) => {
  let staff: User;
  let staffToken: string;
  let plainToken: string;
  /** client_credentials for our API with the `admin` scope: it acts for the client alone. */
  let machineToken: string;
  /** client_credentials for no resource: no token for the REST API at all. */
  let bareMachineToken: string;
  let seq = 0;

  const uniqueIdentifier = () => `https://api-${++seq}-${randomBytes(3).toString('hex')}.example.com/v1`;

  const api = fx.api;
  const apiLogin = async (username: string): Promise<string> => (await fx.apiLogin(username)).access;

  async function create(body: Json): Promise<ResourceJson> {
    const answer = await api('POST', '/api/resources/', { token: staffToken, json: body });
    expect(answer.status, answer.text).toBe(201);
    return asResource(answer);
  }

  const rowCount = async () => Number(((await fx.server.latchkey.storage.knex('resources').count({ n: '*' })) as Array<{ n: number | string }>)[0]?.n);

  async function auditEvents(event: string): Promise<Array<{ actor: string; target_id: string | null; details: Json | null }>> {
    const answer = await api('GET', `/api/audit/?event=${event}&page_size=100`, { token: staffToken });
    expect(answer.status, answer.text).toBe(200);
    return answer.json['results'] as Array<{ actor: string; target_id: string | null; details: Json | null }>;
  }

  const cli = (...args: string[]) =>
    runProcess(process.execPath, [CLI_MAIN, ...args], { env: { ...process.env, DATABASE_URL: fx.server.db.url, BCRYPT_COST: '10', PUBLIC_URL: fx.server.url }, cwd: ROOT });

  function oneJsonLine(r: ProcessResult): unknown {
    expect(r.code, describeRun(r)).toBe(0);
    expect(r.stderr, describeRun(r)).toBe('');
    expect(r.stdout, describeRun(r)).toMatch(/^[^\n]+\n$/);
    return JSON.parse(r.stdout);
  }

  function expectOneLineError(r: ProcessResult, code: number, mentions: RegExp): void {
    expect(r.signal, describeRun(r)).toBeNull();
    expect(r.code, describeRun(r)).toBe(code);
    expect(r.stdout, describeRun(r)).toBe('');
    expect(r.stderr, describeRun(r)).toMatch(/^error: [^\n]+\n$/);
    expect(r.stderr).toMatch(mentions);
  }

  beforeAll(async () => {
    staff = await makeUser(fx.server.latchkey, { username: `staff_${randomBytes(3).toString('hex')}`, isStaff: true });
    const plain = await makeUser(fx.server.latchkey);
    [staffToken, plainToken] = await Promise.all([apiLogin(staff.username), apiLogin(plain.username)]);
    const machine = await makeClient(fx.server.latchkey, { name: 'Machine', redirectUris: [], postLogoutRedirectUris: [], grantTypes: ['client_credentials'], apiScopes: ['admin'] });
    const machineConfig = await discover(fx.server.issuer, machine.client.clientId, machine.clientSecret ?? '');
    machineToken = (await oidc.clientCredentialsGrant(machineConfig, { resource: apiResourceOf(fx.server.latchkey), scope: 'admin' })).access_token;
    expect(decodeJwt(machineToken)).toMatchObject({ sub: machine.client.clientId, aud: apiResourceOf(fx.server.latchkey), scope: 'admin' });
    bareMachineToken = (await oidc.clientCredentialsGrant(machineConfig, { scope: '' })).access_token;
  });

  describe('who may manage resources', () => {
    const cases: Array<{ route: string; method: string; path: () => Promise<string>; body?: () => Json; ok: number }> = [
      { route: 'GET /api/resources/', method: 'GET', path: async () => '/api/resources/', ok: 200 },
      { route: 'POST /api/resources/', method: 'POST', path: async () => '/api/resources/', body: () => ({ identifier: uniqueIdentifier() }), ok: 201 },
      { route: 'GET /api/resources/<id>/', method: 'GET', path: async () => `/api/resources/${(await create({ identifier: uniqueIdentifier() })).id}/`, ok: 200 },
      {
        route: 'PATCH /api/resources/<id>/',
        method: 'PATCH',
        path: async () => `/api/resources/${(await create({ identifier: uniqueIdentifier() })).id}/`,
        body: () => ({ name: 'Renamed' }),
        ok: 200,
      },
      { route: 'DELETE /api/resources/<id>/', method: 'DELETE', path: async () => `/api/resources/${(await create({ identifier: uniqueIdentifier() })).id}/`, ok: 204 },
    ];

    for (const c of cases) {
      it(`${c.route}: anonymous 401, garbage 401, user 403, client-only 403, client for no resource 403, staff ${c.ok}`, async () => {
        const path = await c.path();
        const before = await rowCount();
        const anonymous = await api(c.method, path, c.body ? { json: c.body() } : {});
        expect(anonymous.status, anonymous.text).toBe(401);
        expect(anonymous.headers.get('www-authenticate') ?? '').toMatch(/^Bearer error="invalid_token"/);
        expect((await api(c.method, path, { token: 'garbage', ...(c.body ? { json: c.body() } : {}) })).status).toBe(401);
        for (const [who, token] of [['user', plainToken], ['client-only', machineToken]] as const) {
          const refused = await api(c.method, path, { token, ...(c.body ? { json: c.body() } : {}) });
          expect(refused.status, `${who}: ${refused.text}`).toBe(403);
          expect(refused.json['error']).toBe('permission_denied');
        }
        const bare = await api(c.method, path, { token: bareMachineToken, ...(c.body ? { json: c.body() } : {}) });
        expect(bare.status, `client for no resource: ${bare.text}`).toBe(403);
        expect(bare.json['error']).toBe('insufficient_scope');
        expect(bare.headers.get('www-authenticate') ?? '').toMatch(/^Bearer error="insufficient_scope".*scope="admin"/);
        // Nothing a refused caller sent changed anything.
        expect(await rowCount()).toBe(before);
        const allowed = await api(c.method, path, { token: staffToken, ...(c.body ? { json: c.body() } : {}) });
        expect(allowed.status, allowed.text).toBe(c.ok);
      });
    }

    it('takes a staff member\'s provider JWT for the API (scope admin) like their /api/token/ JWT', async () => {
      const app = await makeClient(fx.server.latchkey, { name: 'Staff tool', apiScopes: ['admin', 'users:read'] });
      const appConfig = await discover(fx.server.issuer, app.client.clientId, app.clientSecret ?? '');
      const login = { username: staff.username, password: PASSWORD };
      const { tokens } = await loginAndExchange(appConfig, new UserAgent(), login, apiAuthorization(fx.server.latchkey, ['admin'], 'openid'));
      expect(decodeJwt(tokens.access_token)).toMatchObject({ aud: apiResourceOf(fx.server.latchkey), scope: 'admin' });
      const answer = await api('GET', '/api/resources/', { token: tokens.access_token });
      expect(answer.status, answer.text).toBe(200);

      // The same staff member's token without `admin` does not reach the resources.
      const narrow = await loginAndExchange(appConfig, new UserAgent(), login, apiAuthorization(fx.server.latchkey, ['users:read'], 'openid'));
      expect(decodeJwt(narrow.tokens.access_token)['scope']).toBe('users:read');
      const refused = await api('POST', '/api/resources/', { token: narrow.tokens.access_token, json: { identifier: uniqueIdentifier() } });
      expect(refused.status, refused.text).toBe(403);
      expect(refused.json['error']).toBe('insufficient_scope');
      expect(refused.headers.get('www-authenticate') ?? '').toMatch(/^Bearer error="insufficient_scope".*scope="admin"/);
    });
  });

  describe('the built-in REST API resource', () => {
    it('is listed first, with id 0, the API audience and the four API scopes', async () => {
      const answer = await api('GET', '/api/resources/', { token: staffToken });
      expect(answer.status, answer.text).toBe(200);
      const [first] = answer.json['results'] as ResourceJson[];
      expect(first).toEqual({
        id: 0,
        identifier: `${fx.server.url}/api`,
        name: 'Latchkey REST API',
        scopes: ['users:read', 'users:write', 'account', 'admin'],
        access_token_ttl: 900,
        access_token_format: 'jwt',
        built_in: true,
        created_at: null,
        updated_at: null,
      });
      expect((await api('GET', '/api/resources/0/', { token: staffToken })).json['identifier']).toBe(`${fx.server.url}/api`);
    });

    it('cannot be changed or deleted (403), nor its identifier taken (409)', async () => {
      const patched = await api('PATCH', '/api/resources/0/', { token: staffToken, json: { scopes: ['users:read', 'superuser'] } });
      expect(patched.status, patched.text).toBe(403);
      expect(patched.json['error']).toBe('permission_denied');
      expect((await api('DELETE', '/api/resources/0/', { token: staffToken })).status).toBe(403);
      const taken = await api('POST', '/api/resources/', { token: staffToken, json: { identifier: `${fx.server.url}/api` } });
      expect(taken.status, taken.text).toBe(409);
      const other = await create({ identifier: uniqueIdentifier() });
      expect((await api('PATCH', `/api/resources/${other.id}/`, { token: staffToken, json: { identifier: `${fx.server.url}/api` } })).status).toBe(409);
      expect((await api('GET', '/api/resources/0/', { token: staffToken })).json['scopes']).toEqual([...API_SCOPES]);
    });
  });

  describe('create, read, change, delete', () => {
    it('creates with defaults, answers 201 with Location, and stores exactly that', async () => {
      const identifier = uniqueIdentifier();
      const answer = await api('POST', '/api/resources/', { token: staffToken, json: { identifier } });
      expect(answer.status, answer.text).toBe(201);
      const created = asResource(answer);
      expect(Object.keys(created).sort()).toEqual(RESOURCE_KEYS);
      expect(created).toMatchObject({ identifier, name: identifier, scopes: [], access_token_ttl: 3600, access_token_format: 'jwt', built_in: false });
      expect(created.id).toBeGreaterThan(0);
      expect(answer.headers.get('location')).toBe(`/api/resources/${created.id}/`);
      const row = (await fx.server.latchkey.storage.knex('resources').where({ id: created.id }).first()) as Json;
      expect(row).toMatchObject({ identifier, name: identifier, access_token_ttl: 3600, access_token_format: 'jwt' });
      expect(JSON.parse(String(row['scopes']))).toEqual([]);
      expect((await api('GET', `/api/resources/${created.id}`, { token: staffToken })).json).toEqual(created);
    });

    it('creates with every field, changes some, then deletes', async () => {
      const created = await create({ identifier: uniqueIdentifier(), name: 'Orders', scopes: ['read:orders', 'write:orders'], access_token_ttl: 60, access_token_format: 'opaque' });
      expect(created).toMatchObject({ name: 'Orders', scopes: ['read:orders', 'write:orders'], access_token_ttl: 60, access_token_format: 'opaque' });
      const identifier = uniqueIdentifier();
      const patched = await api('PATCH', `/api/resources/${created.id}/`, { token: staffToken, json: { identifier, access_token_ttl: 86400 } });
      expect(patched.status, patched.text).toBe(200);
      expect(asResource(patched)).toMatchObject({ id: created.id, identifier, name: 'Orders', scopes: ['read:orders', 'write:orders'], access_token_ttl: 86400, access_token_format: 'opaque' });
      expect((await api('DELETE', `/api/resources/${created.id}/`, { token: staffToken })).status).toBe(204);
      expect((await api('GET', `/api/resources/${created.id}/`, { token: staffToken })).status).toBe(404);
      expect((await api('DELETE', `/api/resources/${created.id}/`, { token: staffToken })).status).toBe(404);
      expect((await api('PATCH', `/api/resources/${created.id}/`, { token: staffToken, json: { name: 'x' } })).status).toBe(404);
      expect(await fx.server.latchkey.storage.knex('resources').where({ id: created.id }).first()).toBeUndefined();
    });

    it('answers 404 for ids that do not exist or are not numbers', async () => {
      for (const id of ['999999', 'abc', '-1', '1.5', '00x']) {
        const answer = await api('GET', `/api/resources/${id}/`, { token: staffToken });
        expect(answer.status, `${id}: ${answer.text}`).toBe(404);
        expect(answer.json['error']).toBe('not_found');
      }
    });

    it('refuses a taken identifier with 409, on create and on change', async () => {
      const first = await create({ identifier: uniqueIdentifier() });
      const before = await rowCount();
      const again = await api('POST', '/api/resources/', { token: staffToken, json: { identifier: first.identifier } });
      expect(again.status, again.text).toBe(409);
      expect(again.json['error']).toBe('conflict');
      expect(await rowCount()).toBe(before);
      const second = await create({ identifier: uniqueIdentifier() });
      const clash = await api('PATCH', `/api/resources/${second.id}/`, { token: staffToken, json: { identifier: first.identifier } });
      expect(clash.status, clash.text).toBe(409);
      expect((await api('GET', `/api/resources/${second.id}/`, { token: staffToken })).json['identifier']).toBe(second.identifier);
    });

    it('pages the list', async () => {
      await create({ identifier: uniqueIdentifier() });
      const all = await api('GET', '/api/resources/?page_size=1', { token: staffToken });
      expect(all.status).toBe(200);
      expect(all.json['count']).toBe((await rowCount()) + 1);
      expect(all.json['next']).toEqual(expect.stringContaining('page=2'));
      expect((await api('GET', '/api/resources/?page=9999', { token: staffToken })).status).toBe(404);
    });
  });

  describe('validation (400, one message list per bad field)', () => {
    const bad: Array<[string, Json, string]> = [
      ['identifier missing', { name: 'x' }, 'identifier'],
      ['identifier empty', { identifier: '' }, 'identifier'],
      ['identifier not a string', { identifier: 42 }, 'identifier'],
      ['identifier relative', { identifier: 'api.example.com/v1' }, 'identifier'],
      ['identifier not http(s)', { identifier: 'urn:example:api' }, 'identifier'],
      ['identifier with fragment', { identifier: 'https://api.example.com/#v1' }, 'identifier'],
      ['identifier with credentials', { identifier: 'https://user:pw@api.example.com/' }, 'identifier'],
      ['identifier with space', { identifier: 'https://api.example.com/a b' }, 'identifier'],
      ['identifier too long', { identifier: `https://api.example.com/${'a'.repeat(600)}` }, 'identifier'],
      ['name not a string', { identifier: 'https://n.example.com/', name: ['x'] }, 'name'],
      ['name too long', { identifier: 'https://n.example.com/', name: 'n'.repeat(256) }, 'name'],
      ['scopes not a list', { identifier: 'https://s.example.com/', scopes: 'read write' }, 'scopes'],
      ['scopes not strings', { identifier: 'https://s.example.com/', scopes: ['read', 1] }, 'scopes'],
      ['scope with a space', { identifier: 'https://s.example.com/', scopes: ['read write'] }, 'scopes'],
      ['scope with a quote', { identifier: 'https://s.example.com/', scopes: ['re"ad'] }, 'scopes'],
      ['empty scope', { identifier: 'https://s.example.com/', scopes: [''] }, 'scopes'],
      ['duplicate scope', { identifier: 'https://s.example.com/', scopes: ['read', 'read'] }, 'scopes'],
      ['an OpenID scope', { identifier: 'https://s.example.com/', scopes: ['openid'] }, 'scopes'],
      ['ttl too short', { identifier: 'https://t.example.com/', access_token_ttl: 59 }, 'access_token_ttl'],
      ['ttl too long', { identifier: 'https://t.example.com/', access_token_ttl: 86401 }, 'access_token_ttl'],
      ['ttl fractional', { identifier: 'https://t.example.com/', access_token_ttl: 600.5 }, 'access_token_ttl'],
      ['ttl as a string', { identifier: 'https://t.example.com/', access_token_ttl: '600' }, 'access_token_ttl'],
      ['unknown format', { identifier: 'https://f.example.com/', access_token_format: 'paseto' }, 'access_token_format'],
      ['read-only id', { identifier: 'https://r.example.com/', id: 5 }, 'id'],
      ['read-only built_in', { identifier: 'https://r.example.com/', built_in: true }, 'built_in'],
    ];

    for (const [label, body, field] of bad) {
      it(`POST refuses ${label}`, async () => {
        const before = await rowCount();
        const answer = await api('POST', '/api/resources/', { token: staffToken, json: body });
        expect(answer.status, answer.text).toBe(400);
        expect(answer.json['error']).toBe('invalid_request');
        expect(Object.keys(fieldsOf(answer))).toEqual([field]);
        expect(fieldsOf(answer)[field]?.[0]).toEqual(expect.any(String));
        expect(await rowCount()).toBe(before);
      });
    }

    it('PATCH refuses bad values and leaves the resource as it was', async () => {
      const created = await create({ identifier: uniqueIdentifier(), scopes: ['read'] });
      for (const [label, body, field] of bad.filter(([label]) => !label.startsWith('identifier missing'))) {
        const answer = await api('PATCH', `/api/resources/${created.id}/`, { token: staffToken, json: body });
        expect(answer.status, `${label}: ${answer.text}`).toBe(400);
        expect(Object.keys(fieldsOf(answer)), label).toContain(field);
      }
      expect((await api('GET', `/api/resources/${created.id}/`, { token: staffToken })).json).toEqual(created);
    });

    it('names a resource after its identifier when no name is given, however long', async () => {
      const identifier = `https://long.example.com/${'a'.repeat(480)}`;
      const created = await create({ identifier, name: '   ' });
      expect(created.name).toBe(identifier);
    });

    it('refuses a body that is not an object', async () => {
      const answer = await api('POST', '/api/resources/', { token: staffToken, raw: '["https://x.example.com/"]' });
      expect(answer.status, answer.text).toBe(400);
      expect((await api('POST', '/api/resources/', { token: staffToken, raw: '{bad json' })).status).toBe(400);
    });
  });

  it('records creation, changes and deletion in the audit log with the staff member as actor', async () => {
    const created = await create({ identifier: uniqueIdentifier(), scopes: ['read'] });
    await api('PATCH', `/api/resources/${created.id}/`, { token: staffToken, json: { name: 'Audited' } });
    await api('DELETE', `/api/resources/${created.id}/`, { token: staffToken });
    for (const event of ['resource.created', 'resource.updated', 'resource.deleted']) {
      const mine = (await auditEvents(event)).filter((e) => e.target_id === String(created.id));
      expect(mine, event).toHaveLength(1);
      expect(mine[0]?.actor).toBe(staff.username);
      expect(mine[0]?.details?.['identifier']).toBe(created.identifier);
    }
  });

  describe('CLI', () => {
    it('creates a resource (--json) that the running server issues JWTs for at once', async () => {
      const identifier = uniqueIdentifier();
      const made = oneJsonLine(await cli('resource', 'create', '--identifier', identifier, '--name', 'From the CLI', '--scope', 'read', '--scope', 'write admin', '--ttl', '300', '--json')) as ResourceJson;
      expect(made).toMatchObject({ identifier, name: 'From the CLI', scopes: ['read', 'write', 'admin'], access_token_ttl: 300, access_token_format: 'jwt', built_in: false });

      const app = await makeClient(fx.server.latchkey, { name: 'CLI consumer', redirectUris: [], postLogoutRedirectUris: [], grantTypes: ['client_credentials'] });
      const config = await discover(fx.server.issuer, app.client.clientId, app.clientSecret ?? '');
      const tokens = await oidc.clientCredentialsGrant(config, { resource: identifier, scope: 'read admin' });
      expect(decodeJwt(tokens.access_token)).toMatchObject({ aud: identifier, scope: 'read admin' });
      expect(tokens.expires_in).toBe(300);

      const events = (await auditEvents('resource.created')).filter((e) => e.target_id === String(made.id));
      expect(events[0]?.actor).toBe('cli');
    });

    it('lists resources, the built-in one included (--json and text)', async () => {
      const identifier = uniqueIdentifier();
      oneJsonLine(await cli('resource', 'create', '--identifier', identifier, '--format', 'opaque', '--json'));
      const list = oneJsonLine(await cli('resource', 'list', '--json')) as ResourceJson[];
      expect(list[0]).toMatchObject({ id: 0, identifier: `${fx.server.url}/api`, built_in: true, scopes: [...API_SCOPES] });
      expect(list.find((r) => r.identifier === identifier)).toMatchObject({ access_token_format: 'opaque', access_token_ttl: 3600, scopes: [] });
      const text = await cli('resource', 'list');
      expect(text.code, describeRun(text)).toBe(0);
      expect(text.stdout).toContain(`${fx.server.url}/api`);
      expect(text.stdout).toContain('(built-in)');
      expect(text.stdout).toContain(identifier);
    });

    it('deletes by identifier; the server refuses the resource afterwards', async () => {
      const identifier = uniqueIdentifier();
      oneJsonLine(await cli('resource', 'create', '--identifier', identifier, '--scope', 'read', '--json'));
      const removed = await cli('resource', 'delete', '--identifier', identifier);
      expect(removed.code, describeRun(removed)).toBe(0);
      expect(removed.stderr).toBe('');
      expect(removed.stdout).toContain(identifier);
      expect(await fx.server.latchkey.storage.knex('resources').where({ identifier }).first()).toBeUndefined();
      const app = await makeClient(fx.server.latchkey, { name: 'After delete', redirectUris: [], postLogoutRedirectUris: [], grantTypes: ['client_credentials'] });
      const config = await discover(fx.server.issuer, app.client.clientId, app.clientSecret ?? '');
      await expect(oidc.clientCredentialsGrant(config, { resource: identifier, scope: 'read' })).rejects.toMatchObject({ error: 'invalid_target' });
      expectOneLineError(await cli('resource', 'delete', '--identifier', identifier), 1, /no such resource/i);
    });

    it('fails with one line on stderr for bad input, duplicates and the built-in resource', async () => {
      const before = await rowCount();
      expectOneLineError(await cli('resource', 'create', '--scope', 'read'), 1, /--identifier is required/);
      expectOneLineError(await cli('resource', 'create', '--identifier', 'ftp://files.example.com/'), 1, /--identifier: .*http/);
      expectOneLineError(await cli('resource', 'create', '--identifier', 'https://x.example.com/#f'), 1, /fragment/);
      expectOneLineError(await cli('resource', 'create', '--identifier', 'https://x.example.com/', '--ttl', 'soon'), 1, /--ttl/);
      expectOneLineError(await cli('resource', 'create', '--identifier', 'https://x.example.com/', '--ttl', '30'), 1, /--ttl: .*60/);
      expectOneLineError(await cli('resource', 'create', '--identifier', 'https://x.example.com/', '--format', 'paseto'), 1, /--format/);
      expectOneLineError(await cli('resource', 'create', '--identifier', 'https://x.example.com/', '--scope', 'openid'), 1, /--scope: .*OpenID/);
      expectOneLineError(await cli('resource', 'create', '--identifier', `${fx.server.url}/api`), 1, /already exists/);
      expectOneLineError(await cli('resource', 'delete', '--identifier', `${fx.server.url}/api`), 1, /built-in/);
      expectOneLineError(await cli('resource', 'delete'), 1, /--identifier is required/);
      expectOneLineError(await cli('resource', 'rename'), 2, /unknown resource command/);
      expectOneLineError(await cli('resource', 'create', '--identifier', 'https://x.example.com/', '--bogus'), 2, /bogus/);
      const identifier = uniqueIdentifier();
      oneJsonLine(await cli('resource', 'create', '--identifier', identifier, '--json'));
      expectOneLineError(await cli('resource', 'create', '--identifier', identifier), 1, /already exists/);
      expect(await rowCount()).toBe(before + 1);
    });

    it('documents the resource commands in help', async () => {
      const help = await cli('help');
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('resource create --identifier URI');
      expect(help.stdout).toContain('resource list');
      expect(help.stdout).toContain('resource delete --identifier URI');
    });
  });
});
