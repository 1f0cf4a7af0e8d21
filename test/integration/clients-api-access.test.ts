import { describe, expect, it } from 'vitest';
import { BUILT_IN_CLIENT_IDS } from '../../src/core/clients/client-service.js';
import { UserAgent } from '../helpers/browserless.js';
import { discover, loginAndExchange, makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { useClientsApi, type Json, sha256, asClient, asPage, basic } from '../helpers/clients-api.js';

/**
 * The clients REST API: who may manage clients, the built-in clients, client secrets at the token endpoint, and deletion taking effect there at once.
 */
describeOnBackends('clients REST API and dynamic registration over HTTP (%s)', (fx) => {
  const ctx = useClientsApi(fx);
  const { learnSecret, api, dbRow, dbSecretHash, expectStoredAsHash, createClient, clientCredentials, expectToken, expectInvalidClient, expectUnauthenticated, unique, clientCount, issuedCount } = ctx;

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
        user: ctx.plainToken,
        machine: ctx.machineToken,
        'bare-machine': ctx.bareMachineToken,
        staff: ctx.staffToken,
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
      const listed = await api('GET', '/api/clients', { token: ctx.staffToken });
      expect(listed.status, listed.text).toBe(200);
      expect(asPage(listed).count).toBe(await clientCount());

      const created = await api('POST', '/api/clients', { token: ctx.staffToken, json: { client_name: unique('NoSlash'), redirect_uris: [REDIRECT_URI] } });
      expect(created.status, created.text).toBe(201);
      const client = asClient(created);
      learnSecret(client.client_secret);
      expect((await api('GET', `/api/clients/${client.client_id}`, { token: ctx.staffToken })).status).toBe(200);
      const patched = await api('PATCH', `/api/clients/${client.client_id}`, { token: ctx.staffToken, json: { client_name: 'No slash' } });
      expect(patched.status, patched.text).toBe(200);
      for (const rotatePath of [`/api/clients/${client.client_id}/rotate-secret`, `/api/clients/${client.client_id}/rotate-secret/`]) {
        const rotated = await api('POST', rotatePath, { token: ctx.staffToken });
        expect(rotated.status, `${rotatePath}: ${rotated.text}`).toBe(200);
        learnSecret(asClient(rotated).client_secret);
      }
      expect((await api('DELETE', `/api/clients/${client.client_id}`, { token: ctx.staffToken })).status).toBe(204);
      expect(await dbRow(client.client_id)).toBeUndefined();
      // Unauthenticated without the slash is refused just the same.
      expectUnauthenticated(await api('GET', '/api/clients'));
      expect((await api('GET', '/api/clients', { token: ctx.plainToken })).status).toBe(403);
    });
  });

  // ------------------------------------------------------------------------- built-ins

  describe('built-in clients', () => {
    it.each([...BUILT_IN_CLIENT_IDS])('%s can be read but not changed, rotated or deleted', async (id) => {
      const before = await dbRow(id);
      expect(before).toBeDefined();
      const read = await api('GET', `/api/clients/${id}/`, { token: ctx.staffToken });
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
        const answer = await api(method, path, { token: ctx.staffToken, json });
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

      const rotated = await api('POST', `/api/clients/${client.client_id}/rotate-secret/`, { token: ctx.staffToken });
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

      const read = await api('GET', `/api/clients/${client.client_id}/`, { token: ctx.staffToken });
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
      expectInvalidClient(await clientCredentials(client.client_id, ctx.machine.secret, 'basic'));
      expectInvalidClient(await clientCredentials(client.client_id, ctx.machine.secret, 'post'));
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

      const deleted = await api('DELETE', `/api/clients/${client.client_id}/`, { token: ctx.staffToken });
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
      expect((await api('GET', `/api/clients/${client.client_id}/`, { token: ctx.staffToken })).status).toBe(404);
      expect((await api('DELETE', `/api/clients/${client.client_id}/`, { token: ctx.staffToken })).status).toBe(404);

      // Even a client re-created under the same id and secret finds the tokens dead: they
      // were revoked, not merely orphaned.
      await fx.server.latchkey.storage.knex('clients').insert(row);
      const refused = await refresh();
      expect(refused.status, refused.text).toBe(400);
      expect(refused.json['error']).toBe('invalid_grant');
      expect((await userinfo(tokens.access_token)).status).toBe(401);
      expectUnauthenticated(await api('GET', '/auth/me/', { token: tokens.access_token }));
      await fx.server.latchkey.storage.knex('clients').where({ client_id: client.client_id }).delete();
    });
  });
});
