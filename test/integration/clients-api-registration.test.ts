import { setTimeout as sleep } from 'node:timers/promises';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { UserAgent } from '../helpers/browserless.js';
import { discover, loginAndExchange, makeClient, makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { useClientsApi, type Json, sha256, asClient, asPage, type InitialAccessToken } from '../helpers/clients-api.js';

/**
 * Dynamic client registration (RFC 7591 at /o/reg, RFC 7592 at /o/reg/<id>) and its policy.
 */
describeOnBackends('clients REST API and dynamic registration over HTTP (%s)', (fx) => {
  const ctx = useClientsApi(fx);
  const { learnSecret, api, dbRow, dbSecretHash, expectStoredAsHash, clientCredentials, expectToken, expectInvalidClient, createIat, unique, clientCount, issuedCount } = ctx;

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

      for (const token of ['garbage', ctx.staffToken, ctx.machineToken]) {
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

      const list = await api('GET', '/api/clients/?page_size=100', { token: ctx.staffToken });
      const listed = asPage(list).results.find((c) => c.client_id === clientId);
      expect(listed).toMatchObject({ client_id: clientId, client_name: name, client_type: 'confidential', grant_types: ['client_credentials'], built_in: false });
      expect(listed?.client_secret).toBeUndefined();
      expect(list.text).not.toContain(secret);
      const one = await api('GET', `/api/clients/${clientId}/`, { token: ctx.staffToken });
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
        name: 'resource_server_for (staff make resource servers, never registration)',
        metadata: { grant_types: ['client_credentials'], response_types: [], resource_server_for: ['https://api.example.com/'] },
        mentions: /resource_server_for/,
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
      expect(asClient(await api('GET', `/api/clients/${clientId}/`, { token: ctx.staffToken })).grant_types).toEqual(['client_credentials']);
      // Nor can the client grant itself scopes of our REST API.
      const selfGranted = await api('PUT', uri, { token: rat, json: { ...current, api_scopes: 'users:read users:write account admin' } });
      expect(selfGranted.status, selfGranted.text).toBe(400);
      expect(selfGranted.json['error']).toBe('invalid_client_metadata');
      expect(asClient(await api('GET', `/api/clients/${clientId}/`, { token: ctx.staffToken })).api_scopes).toEqual([]);
      // Nor make itself the resource server of an API, to read the tokens issued to others.
      const selfServer = await api('PUT', uri, { token: rat, json: { ...current, resource_server_for: [`${fx.server.url}/api`] } });
      expect(selfServer.status, selfServer.text).toBe(400);
      expect(selfServer.json['error']).toBe('invalid_client_metadata');
      expect(asClient(await api('GET', `/api/clients/${clientId}/`, { token: ctx.staffToken })).resource_server_for).toEqual([]);

      const updated = await api('PUT', uri, { token: rat, json: { ...current, client_name: newName } });
      expect(updated.status, updated.text).toBe(200);
      expect(updated.json['client_name']).toBe(newName);
      expect(updated.json).not.toHaveProperty('client_secret');
      expect(updated.text).not.toContain(secret);
      expect(updated.text).not.toContain(storedHash);
      const nextRat = (updated.json['registration_access_token'] as string | undefined) ?? rat;

      const viaApi = await api('GET', `/api/clients/${clientId}/`, { token: ctx.staffToken });
      expect(viaApi.status).toBe(200);
      expect(asClient(viaApi)).toMatchObject({ client_id: clientId, client_name: newName, client_type: 'confidential' });
      // The update kept the secret (and stored nothing new in its place).
      expect(await dbSecretHash(clientId)).toBe(storedHash);
      expectToken(await clientCredentials(clientId, secret));

      // Delete: 204, and the client is gone everywhere.
      const removed = await api('DELETE', uri, { token: nextRat });
      expect(removed.status, removed.text).toBe(204);
      expect((await api('GET', `/api/clients/${clientId}/`, { token: ctx.staffToken })).status).toBe(404);
      const list = await api('GET', '/api/clients/?page_size=100', { token: ctx.staffToken });
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
