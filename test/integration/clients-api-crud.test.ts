import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { BUILT_IN_CLIENT_IDS } from '../../src/core/clients/client-service.js';
import { apiResourceOf, POST_LOGOUT_URI, REDIRECT_URI } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { useClientsApi, type Json, type ClientJson, CLIENT_KEYS, sha256, asClient, asPage, fieldsOf, basic } from '../helpers/clients-api.js';

/**
 * The clients REST API: creating, reading and updating clients; a secret shown exactly once and stored only as its SHA-256.
 */
describeOnBackends('clients REST API and dynamic registration over HTTP (%s)', (fx) => {
  const ctx = useClientsApi(fx);
  const { learnSecret, api, dbRow, dbSecretHash, expectStoredAsHash, createClient, clientCredentials, expectToken, expectInvalidClient, unique, clientCount } = ctx;

  // ---------------------------------------------------------------------- create & read

  describe('creating and reading clients', () => {
    it('creates a confidential client: the secret is shown once and stored only as its SHA-256', async () => {
      const answer = await api('POST', '/api/clients/', {
        token: ctx.staffToken,
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

      const read = await api('GET', `/api/clients/${client.client_id}/`, { token: ctx.staffToken });
      expect(read.status, read.text).toBe(200);
      expect(read.json['client_secret']).toBeUndefined();
      expect(read.text).not.toContain(secret);
      const { client_secret: _shownOnce, ...withoutSecret } = client;
      expect(read.json).toEqual(withoutSecret);

      const list = await api('GET', '/api/clients/?page_size=100', { token: ctx.staffToken });
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
      const read = await api('GET', `/api/clients/${client.client_id}/`, { token: ctx.staffToken });
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
        const answer = await api('GET', `/api/clients/${clientId}/`, { token: ctx.staffToken });
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
      const listed = asPage(await api('GET', '/api/clients/?page_size=100', { token: ctx.staffToken })).results.find((c) => c.client_id === client.client_id);
      expect([...(listed?.api_scopes ?? [])].sort()).toEqual(['admin', 'users:read']);
      expect(String(await storedApiScopes(client.client_id)).split(' ').sort()).toEqual(['admin', 'users:read']);
      // What staff registered is what the client's API tokens can carry, and no more.
      expect(await grantedScopes(client)).toEqual(['admin', 'users:read']);

      // A PATCH that does not mention them keeps them.
      const renamed = await api('PATCH', `/api/clients/${client.client_id}/`, { token: ctx.staffToken, json: { client_name: 'Scoped, renamed' } });
      expect(renamed.status, renamed.text).toBe(200);
      expect([...asClient(renamed).api_scopes].sort()).toEqual(['admin', 'users:read']);

      // PATCH replaces them.
      const changed = await api('PATCH', `/api/clients/${client.client_id}/`, { token: ctx.staffToken, json: { api_scopes: ['account'] } });
      expect(changed.status, changed.text).toBe(200);
      expect(changed.json['client_secret']).toBeUndefined();
      expect(asClient(changed)).toMatchObject({ client_id: client.client_id, client_name: 'Scoped, renamed', grant_types: ['client_credentials'], api_scopes: ['account'] });
      expect((await read(client.client_id)).api_scopes).toEqual(['account']);
      expect(await storedApiScopes(client.client_id)).toBe('account');
      expect(await grantedScopes(client)).toEqual(['account']);

      // And an empty list clears them: the client gets no API scope at all.
      const cleared = await api('PATCH', `/api/clients/${client.client_id}/`, { token: ctx.staffToken, json: { api_scopes: [] } });
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
        const created = await api('POST', '/api/clients/', { token: ctx.staffToken, json: { client_name: unique('Bad'), redirect_uris: [REDIRECT_URI], api_scopes: apiScopes } });
        expect(created.status, `POST ${JSON.stringify(apiScopes)}: ${created.text}`).toBe(400);
        expect(created.json['error']).toBe('invalid_client_metadata');
        expect(String(created.json['error_description'])).toMatch(/api_scopes/);
        expect(created.json['client_id']).toBeUndefined();
        expect(created.json['client_secret']).toBeUndefined();

        const patched = await api('PATCH', `/api/clients/${target.client_id}/`, { token: ctx.staffToken, json: { api_scopes: apiScopes } });
        expect(patched.status, `PATCH ${JSON.stringify(apiScopes)}: ${patched.text}`).toBe(400);
        expect(patched.json['error']).toBe('invalid_client_metadata');
      }
      expect(await clientCount()).toBe(count);
      expect(await dbRow(target.client_id)).toEqual(before);
      expect(asClient(await api('GET', `/api/clients/${target.client_id}/`, { token: ctx.staffToken })).api_scopes).toEqual(['users:read']);
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
      const answer = await api('POST', '/api/clients/', { token: ctx.staffToken, json: body });
      expect(answer.status, answer.text).toBe(400);
      if (typeof error === 'string') expect(answer.json['error']).toBe(error);
      else expect(answer.json['error']).toMatch(error);
      expect(answer.json['error_description']).toEqual(expect.any(String));
      // No client was made, so no id or secret comes back: at most DRF's message list for the field.
      expect(answer.json['client_id']).toEqual(fieldsOf(answer)['client_id']);
      expect(answer.json['client_secret']).toEqual(fieldsOf(answer)['client_secret']);
      if (fields) {
        expect(Object.keys(fieldsOf(answer)).sort()).toEqual([...fields].sort());
        for (const messages of Object.values(fieldsOf(answer))) expect(messages).toEqual([expect.any(String)]);
      }
      expect(await clientCount()).toBe(before);
    });

    it('refuses a body that is not JSON, or not an object', async () => {
      const before = await clientCount();
      for (const raw of ['{"client_name": ', '["a"]', '"text"']) {
        const answer = await api('POST', '/api/clients/', { token: ctx.staffToken, raw });
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
        const answer = await api(method, path, { token: ctx.staffToken, json });
        expect(answer.status, `${method} ${path}: ${answer.text}`).toBe(404);
        expect(answer.json['error']).toBe('not_found');
      }
      expect(await dbRow('no-such-client')).toBeUndefined();
    });

    it('paginates as {count, next, previous, results}', async () => {
      for (let i = 0; i < 3; i++) await createClient({ client_name: unique('Page'), redirect_uris: [REDIRECT_URI] });
      const total = await clientCount();
      expect(total).toBeGreaterThanOrEqual(5);

      const first = await api('GET', '/api/clients/?page_size=2', { token: ctx.staffToken });
      expect(first.status, first.text).toBe(200);
      expect(Object.keys(first.json).sort()).toEqual(['count', 'next', 'previous', 'results']);
      expect(asPage(first)).toMatchObject({ count: total, previous: null });
      expect(asPage(first).results).toHaveLength(2);
      const next = new URL(asPage(first).next ?? '');
      expect(next.origin + next.pathname).toBe(`${fx.server.url}/api/clients/`);
      expect(Object.fromEntries(next.searchParams)).toEqual({ page: '2', page_size: '2' });

      const second = await api('GET', asPage(first).next ?? '', { token: ctx.staffToken });
      expect(second.status, second.text).toBe(200);
      expect(asPage(second).count).toBe(total);
      expect(asPage(second).results).toHaveLength(2);
      expect(new URL(asPage(second).previous ?? '').searchParams.get('page')).toBe('1');
      const firstIds = asPage(first).results.map((c) => c.client_id);
      for (const c of asPage(second).results) expect(firstIds).not.toContain(c.client_id);

      const lastPage = Math.ceil(total / 2);
      const last = await api('GET', `/api/clients/?page_size=2&page=${lastPage}`, { token: ctx.staffToken });
      expect(asPage(last).next).toBeNull();
      expect(asPage(last).results).toHaveLength(total - (lastPage - 1) * 2);

      // All pages together are every client exactly once, built-in ones included.
      const all = await api('GET', '/api/clients/?page_size=100', { token: ctx.staffToken });
      const ids = asPage(all).results.map((c) => c.client_id);
      expect(ids).toHaveLength(total);
      expect(new Set(ids).size).toBe(total);
      for (const id of BUILT_IN_CLIENT_IDS) expect(ids).toContain(id);

      expect((await api('GET', `/api/clients/?page_size=2&page=${lastPage + 1}`, { token: ctx.staffToken })).status).toBe(404);
      for (const query of ['page=0', 'page=abc', 'page_size=-1']) {
        const bad = await api('GET', `/api/clients/?${query}`, { token: ctx.staffToken });
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
      const answer = await api('PATCH', `/api/clients/${client.client_id}/`, { token: ctx.staffToken, json: { client_name: 'Renamed App', redirect_uris: uris } });
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
      const read = asClient(await api('GET', `/api/clients/${client.client_id}/`, { token: ctx.staffToken }));
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
        const answer = await api('PATCH', `/api/clients/${client.client_id}/`, { token: ctx.staffToken, json });
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
      const answer = await api('PATCH', `/api/clients/${client.client_id}/`, { token: ctx.staffToken, json: { client_type: 'public' } });
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
      const answer = await api('PATCH', `/api/clients/${client.client_id}/`, { token: ctx.staffToken, json: { client_type: 'public' } });
      expect(answer.status, answer.text).toBe(400);
      expect(answer.json['error']).toBe('invalid_client_metadata');
      expect(await dbSecretHash(client.client_id)).toBe(sha256(client.client_secret ?? ''));
    });

    it('PATCH public -> confidential returns a new secret, once, that works', async () => {
      const client = await createClient({ client_name: unique('ToConfidential'), redirect_uris: [REDIRECT_URI], client_type: 'public' });
      const answer = await api('PATCH', `/api/clients/${client.client_id}/`, {
        token: ctx.staffToken,
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
      const read = await api('GET', `/api/clients/${client.client_id}/`, { token: ctx.staffToken });
      expect(read.json['client_secret']).toBeUndefined();
      expect(read.text).not.toContain(secret);
      // A PATCH that keeps the type shows no secret.
      const again = await api('PATCH', `/api/clients/${client.client_id}/`, { token: ctx.staffToken, json: { client_type: 'confidential' } });
      expect(again.status).toBe(200);
      expect(again.json['client_secret']).toBeUndefined();
      expect(await dbSecretHash(client.client_id)).toBe(sha256(secret));
    });

    it('refuses to rotate the secret of a public client', async () => {
      const client = await createClient({ client_name: unique('Spa'), redirect_uris: [REDIRECT_URI], client_type: 'public' });
      const answer = await api('POST', `/api/clients/${client.client_id}/rotate-secret/`, { token: ctx.staffToken });
      expect(answer.status, answer.text).toBe(400);
      expect(answer.json['client_secret']).toBeUndefined();
      expect(await dbSecretHash(client.client_id)).toBeNull();
    });
  });
});
