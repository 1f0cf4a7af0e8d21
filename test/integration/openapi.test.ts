import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi } from '../helpers/http.js';
import { ResponseChecker, type OpenApiDocument } from '../helpers/openapi-check.js';
import { makeUser, PASSWORD } from '../helpers/rp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

type Doc = { openapi: string; paths: Record<string, Record<string, unknown>> };

/** `/api/users/{id}/` in the document is `/api/users/:id` in the router (slash optional). */
const toRouterPath = (path: string) => path.replace(/\{(\w+)\}/g, ':$1').replace(/(.)\/$/, '$1');
const METHODS = ['get', 'put', 'post', 'patch', 'delete'];

describe('OpenAPI document', () => {
  let server: TestServer;
  let doc: Doc;
  beforeAll(async () => {
    server = await startTestServer('sqlite');
    const response = await fetch(`${server.url}/api/openapi.json`);
    expect(response.status).toBe(200);
    doc = (await response.json()) as Doc;
  });
  afterAll(async () => server?.stop());

  const documented = () =>
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((m) => METHODS.includes(m))
        .map((m) => `${m.toUpperCase()} ${toRouterPath(path)}`),
    );

  it('is OpenAPI 3.1', () => {
    expect(doc.openapi).toBe('3.1.0');
  });

  it('documents exactly the API routes the server has', () => {
    const served = server.latchkey.apiRoutes.map((r) => `${r.method} ${r.path}`);
    expect([...new Set(documented())].sort()).toEqual([...new Set(served)].sort());
  });

  it("names each guarded route's scope, and the tokens it takes, as its security requirement", () => {
    const operations = new Map(
      Object.entries(doc.paths).flatMap(([path, item]) =>
        Object.entries(item)
          .filter(([m]) => METHODS.includes(m))
          .map(([m, op]) => [`${m.toUpperCase()} ${toRouterPath(path)}`, op as { security?: Array<Record<string, string[]>> }] as const),
      ),
    );
    let guarded = 0;
    for (const route of server.latchkey.apiRoutes) {
      const security = operations.get(`${route.method} ${route.path}`)?.security;
      if (!route.rule) {
        expect(security, `${route.method} ${route.path}`).toBeUndefined();
        continue;
      }
      guarded++;
      expect(security, `${route.method} ${route.path}`).toEqual([
        ...(route.rule.optional ? [{}] : []),
        { oauth2: [route.rule.scope] },
        { firstParty: [] },
        ...(route.rule.userinfo ? [{ userinfo: [] }] : []),
      ]);
    }
    expect(guarded).toBeGreaterThan(20);
    const schemes = (doc as unknown as { components: { securitySchemes: Record<string, { flows?: Record<string, { scopes: Record<string, string> }> }> } }).components.securitySchemes;
    expect(Object.keys(schemes['oauth2']!.flows!['authorizationCode']!.scopes).sort()).toEqual(['account', 'admin', 'users:read', 'users:write']);
  });

  it('gives every operation a unique operationId, a summary and tags', () => {
    const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([m]) => METHODS.includes(m))
        .map(([m, op]) => ({ where: `${m.toUpperCase()} ${path}`, ...(op as { operationId?: unknown; summary?: unknown; tags?: unknown }) })),
    );
    expect(operations.length).toBeGreaterThan(30);
    for (const op of operations) {
      expect(op.operationId, op.where).toMatch(/^[a-z][A-Za-z]+$/);
      expect(op.summary, op.where).toEqual(expect.any(String));
      expect(op.tags, op.where).toEqual([expect.any(String)]);
    }
    const ids = operations.map((op) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('generates request schemas from the validation: required fields, unknown fields refused, enums', () => {
    const schemas = (doc as unknown as { components: { schemas: Record<string, { required?: string[]; additionalProperties?: unknown; properties: Record<string, { enum?: unknown }> }> } }).components.schemas;
    expect(schemas['ClientCreate']!.required).toEqual(['client_name']);
    expect(schemas['ClientCreate']!.additionalProperties).toBe(false);
    expect(schemas['ClientWrite']!.required).toBeUndefined();
    expect(schemas['ClientWrite']!.properties['client_type']!.enum).toEqual(['public', 'confidential']);
    expect(schemas['ResourceCreate']!.required).toEqual(['identifier']);
    expect(schemas['UserWrite']!.additionalProperties).toBe(false);
  });

  it('is what the response checker of the suites compiles: a real answer passes, a wrong one is refused', async () => {
    const checker = new ResponseChecker(doc as unknown as OpenApiDocument);
    const login = await fetch(`${server.url}/api/token/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'nobody', password: 'wrong' }) });
    const text = await login.text();
    expect(login.status).toBe(401);
    expect(() => checker.check('POST', '/api/token/', { status: 401, headers: login.headers, text })).not.toThrow();
    const json = new Headers({ 'content-type': 'application/json' });
    expect(() => checker.check('POST', '/api/token/', { status: 200, headers: json, text: JSON.stringify({ access: 'a' }) })).toThrow(/must have required property 'refresh'/);
    expect(() => checker.check('POST', '/api/token/', { status: 401, headers: json, text: JSON.stringify({ error: 'invalid_credentials' }) })).toThrow(/error_description/);
    expect(() => checker.check('POST', '/api/token/', { status: 418, headers: json, text: '{}' })).toThrow(/answered 418, which the OpenAPI document does not list/);
    const user = { id: 1, username: 'a', email: '', first_name: '', last_name: '', is_active: true, is_staff: false, is_superuser: false, email_verified: false, pending_email: null, date_joined: '2026-01-01T00:00:00.000Z', last_login: null, updated_at: '2026-01-01T00:00:00.000Z' };
    expect(() => checker.check('GET', '/api/users/1/', { status: 200, headers: json, text: JSON.stringify(user) })).not.toThrow();
    expect(() => checker.check('GET', '/api/users/1', { status: 200, headers: json, text: JSON.stringify({ ...user, password_hash: 'x' }) })).toThrow(/must NOT have additional properties/);
    expect(() => checker.check('GET', '/api/users/1/', { status: 200, headers: json, text: JSON.stringify({ ...user, id: '1' }) })).toThrow(/\/id must be integer/);
  });

  it('guards each group once: staff routes refuse a person who is not staff, user and staff routes refuse anonymous callers', async () => {
    const person = await makeUser(server.latchkey);
    const login = await callApi(server.url, 'POST', '/api/token/', { json: { username: person.username, password: PASSWORD } });
    expect(login.status, login.text).toBe(200);
    const token = String(login.json['access']);
    const groups = new Map<string, number>();
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item as Record<string, { 'x-latchkey-group'?: string }>)) {
        const group = op['x-latchkey-group'];
        expect(['public', 'user', 'staff'], `${method} ${path}`).toContain(group);
        groups.set(group!, (groups.get(group!) ?? 0) + 1);
        if (group === 'public') continue;
        const target = path.replace('{id}', '999999999').replace('{clientId}', 'no-such-client');
        const json = method === 'get' ? undefined : {};
        const anonymous = await callApi(server.url, method.toUpperCase(), target, { json });
        expect(anonymous.status, `${method} ${path} without a token: ${anonymous.text}`).toBe(401);
        if (group !== 'staff') continue;
        const refused = await callApi(server.url, method.toUpperCase(), target, { json, token });
        expect(refused.status, `${method} ${path} as a person who is not staff: ${refused.text}`).toBe(403);
        expect(refused.json).toEqual({ error: 'permission_denied', error_description: expect.stringMatching(/^Only staff may /), detail: expect.stringMatching(/^Only staff may /) });
      }
    }
    expect(groups.get('staff')).toBeGreaterThanOrEqual(13);
    expect(groups.get('user')).toBeGreaterThanOrEqual(15);
  });

  it('describes paths that answer over HTTP (never 404 or 405)', async () => {
    for (const entry of documented()) {
      const [method, path] = entry.split(' ') as [string, string];
      const url = `${server.url}${path.replace(':id', '1')}/`;
      const response = await fetch(url, {
        method,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        ...(method === 'GET' || method === 'DELETE' ? {} : { body: '{}' }),
      });
      // Anonymous calls are refused (401/403/400), which proves the route exists.
      expect([404, 405], `${entry} answered ${response.status}`).not.toContain(response.status);
    }
  });
});
