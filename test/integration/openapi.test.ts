import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
