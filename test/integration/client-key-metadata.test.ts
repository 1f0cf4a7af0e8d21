/**
 * Client authentication and key metadata (token_endpoint_auth_method, jwks / jwks_uri,
 * require_pushed_authorization_requests, require_signed_request_object) through the three
 * ways staff register clients: the CLI (its own process), the REST API and the admin pages.
 * A private_key_jwt client is confidential without a secret; each place that used to equate
 * "no secret" with "public" is checked.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formOf, UserAgent } from '../helpers/browserless.js';
import { BACKENDS } from '../helpers/env.js';
import { signIn, submitForm } from '../helpers/fixture.js';
import { oauthError } from '../helpers/oauth-error.js';
import { readAnswer, type Answer } from '../helpers/http.js';
import { runProcess, type ProcessResult } from '../helpers/process.js';
import { makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { ACCESS_TOKEN } from '../helpers/shapes.js';

type Json = Record<string, unknown>;

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI_MAIN = path.join(ROOT, 'dist/src/cli/main.js');

const describeResult = (r: ProcessResult) => `exit ${r.code} (signal ${r.signal})\nstdout: ${JSON.stringify(r.stdout)}\nstderr: ${JSON.stringify(r.stderr)}`;

/** A failure the operator can fix: non-zero exit, nothing on stdout, one "error:" line on stderr. */
function expectOneLineError(r: ProcessResult, code: number, mentions: RegExp): void {
  expect(r.signal, describeResult(r)).toBeNull();
  expect(r.code, describeResult(r)).toBe(code);
  expect(r.stdout, describeResult(r)).toBe('');
  expect(r.stderr, describeResult(r)).toMatch(/^error: [^\n]+\n$/);
  expect(r.stderr, describeResult(r)).toMatch(mentions);
}

interface TestKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  /** The whole key pair as a JWK, private members included: what must never be registered. */
  privateJwk: JWK;
}

async function testKey(): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = `k-${randomBytes(4).toString('hex')}`;
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid }, privateJwk: { ...(await exportJWK(privateKey)), kid } };
}

describe.each(BACKENDS)('client authentication and key metadata: CLI, REST, admin pages (%s)', (backend) => {
  let server: TestServer;
  let staffToken: string;
  let key: TestKey;
  let tmp: string;

  beforeAll(async () => {
    server = await startTestServer(backend);
    key = await testKey();
    tmp = await mkdtemp(path.join(os.tmpdir(), 'latchkey-jwks-'));
    const staff = await makeUser(server.latchkey, { isStaff: true });
    const token = await readAnswer(
      await fetch(`${server.url}/api/token/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: staff.username, password: PASSWORD }) }),
    );
    staffToken = token.json['access'] as string;
  });
  afterAll(async () => {
    await server?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const jwks = () => ({ keys: [key.publicJwk] });
  const clientCount = async () => (await server.latchkey.storage.clients.list()).length;

  /** client_credentials with private_key_jwt through openid-client: the key metadata works. */
  async function keyGrant(clientId: string): Promise<string> {
    const config = await oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.PrivateKeyJwt({ key: key.privateKey, kid: key.kid }), {
      execute: [oidc.allowInsecureRequests],
    });
    return (await oidc.clientCredentialsGrant(config)).access_token;
  }

  describe('CLI: client create', () => {
    const cli = (...args: string[]) => runProcess(process.execPath, [CLI_MAIN, ...args], { env: { ...process.env, DATABASE_URL: server.db.url, BCRYPT_COST: '10' }, cwd: ROOT });

    async function jwksFile(content: unknown): Promise<string> {
      const file = path.join(tmp, `${randomBytes(4).toString('hex')}.json`);
      await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
      return file;
    }

    it('registers a private_key_jwt client from a JWKS file, with PAR and signed request objects required', async () => {
      const r = await cli(
        'client', 'create', '--name', 'Key client', '--redirect-uri', REDIRECT_URI, '--grant-type', 'authorization_code', '--grant-type', 'client_credentials',
        '--token-endpoint-auth-method', 'private_key_jwt', '--jwks-file', await jwksFile(jwks()), '--require-par', '--require-signed-request-object', '--json',
      );
      expect(r.code, describeResult(r)).toBe(0);
      expect(r.stderr).toBe('');
      const created = JSON.parse(r.stdout) as Json;
      // Confidential, yet no secret is made: the client proves itself with its key.
      expect(Object.keys(created)).toEqual(['client_id']);
      const stored = await server.latchkey.storage.clients.find(String(created['client_id']));
      expect(stored).toMatchObject({ isPublic: false, hasSecret: false });
      expect(stored?.metadata).toMatchObject({
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: jwks(),
        require_pushed_authorization_requests: true,
        require_signed_request_object: true,
      });
      const listed = JSON.parse((await cli('client', 'list', '--json')).stdout) as Json[];
      expect(listed.find((c) => c['client_id'] === created['client_id'])).toMatchObject({ public: false, token_endpoint_auth_method: 'private_key_jwt' });
      expect(await keyGrant(String(created['client_id']))).toMatch(ACCESS_TOKEN);
    });

    it('registers with --jwks-uri, client_secret_post, and none', async () => {
      const byUri = await cli('client', 'create', '--name', 'Uri client', '--grant-type', 'client_credentials', '--token-endpoint-auth-method', 'private_key_jwt', '--jwks-uri', 'https://keys.example.com/jwks.json', '--json');
      expect(byUri.code, describeResult(byUri)).toBe(0);
      const uriClient = await server.latchkey.storage.clients.find(String((JSON.parse(byUri.stdout) as Json)['client_id']));
      expect(uriClient?.metadata).toMatchObject({ token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://keys.example.com/jwks.json' });
      expect(uriClient?.metadata['jwks']).toBeUndefined();

      const post = await cli('client', 'create', '--name', 'Post client', '--redirect-uri', REDIRECT_URI, '--token-endpoint-auth-method', 'client_secret_post', '--json');
      expect(post.code, describeResult(post)).toBe(0);
      const postCreated = JSON.parse(post.stdout) as Json;
      expect(postCreated['client_secret']).toEqual(expect.any(String));
      expect((await server.latchkey.storage.clients.find(String(postCreated['client_id'])))?.metadata.token_endpoint_auth_method).toBe('client_secret_post');

      const none = await cli('client', 'create', '--name', 'None client', '--redirect-uri', REDIRECT_URI, '--token-endpoint-auth-method', 'none', '--json');
      expect(none.code, describeResult(none)).toBe(0);
      const noneCreated = JSON.parse(none.stdout) as Json;
      expect(Object.keys(noneCreated)).toEqual(['client_id']);
      expect(await server.latchkey.storage.clients.find(String(noneCreated['client_id']))).toMatchObject({ isPublic: true, hasSecret: false });
    });

    it('refuses bad values with one line and a non-zero exit, storing nothing', async () => {
      const before = await clientCount();
      const base = ['client', 'create', '--name', 'Bad', '--redirect-uri', REDIRECT_URI];
      const cases: Array<[string[], number, RegExp]> = [
        [['--token-endpoint-auth-method', 'client_secret_jwt'], 1, /--token-endpoint-auth-method must be one of/],
        [['--jwks-file', path.join(tmp, 'missing.json')], 1, /--jwks-file.*ENOENT/],
        [['--jwks-file', await jwksFile('{"keys": [')], 1, /--jwks-file is not JSON/],
        [['--token-endpoint-auth-method', 'private_key_jwt', '--jwks-file', await jwksFile({ keys: [key.privateJwk] })], 1, /private member "d"/],
        [['--token-endpoint-auth-method', 'private_key_jwt', '--jwks-file', await jwksFile({ keys: 'none' })], 1, /JWK Set/],
        [['--token-endpoint-auth-method', 'private_key_jwt'], 1, /jwks or jwks_uri is mandatory/],
        [['--token-endpoint-auth-method', 'private_key_jwt', '--jwks-file', await jwksFile(jwks()), '--jwks-uri', 'https://keys.example.com/jwks.json'], 1, /jwks and jwks_uri/],
        [['--token-endpoint-auth-method', 'private_key_jwt', '--jwks-uri', 'not a url'], 1, /jwks_uri/],
        [['--public', '--token-endpoint-auth-method', 'private_key_jwt', '--jwks-file', await jwksFile(jwks())], 1, /public client authenticates with "none"/],
        [['--require-signed-request-object'], 1, /require_signed_request_object needs jwks or jwks_uri/],
        [['--require-par=yes'], 2, /--require-par/],
        [['--jwks-uri'], 2, /--jwks-uri/],
      ];
      for (const [args, code, mentions] of cases) expectOneLineError(await cli(...base, ...args), code, mentions);
      expect(await clientCount()).toBe(before);
    });
  });

  describe('REST: /api/clients/', () => {
    async function api(method: string, route: string, json?: unknown): Promise<Answer> {
      const headers: Record<string, string> = { authorization: `Bearer ${staffToken}`, accept: 'application/json' };
      if (json !== undefined) headers['content-type'] = 'application/json';
      return readAnswer(await fetch(`${server.url}${route}`, { method, headers, ...(json !== undefined ? { body: JSON.stringify(json) } : {}) }));
    }

    const keyClientBody = (extra: Json = {}) => ({
      client_name: `Key ${randomBytes(3).toString('hex')}`,
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: jwks(),
      ...extra,
    });

    it('creates a private_key_jwt client: confidential, no secret, keys and requirements echoed', async () => {
      const created = await api('POST', '/api/clients/', keyClientBody({ redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code', 'client_credentials'], require_pushed_authorization_requests: true, require_signed_request_object: true }));
      expect(created.status, created.text).toBe(201);
      expect(created.json['client_secret']).toBeUndefined();
      expect(created.json).toMatchObject({
        client_type: 'confidential',
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: jwks(),
        jwks_uri: null,
        require_pushed_authorization_requests: true,
        require_signed_request_object: true,
      });
      const id = String(created.json['client_id']);
      expect(await keyGrant(id)).toMatch(ACCESS_TOKEN);
      const listed = await api('GET', '/api/clients/?page_size=100');
      expect((listed.json['results'] as Json[]).find((c) => c['client_id'] === id)).toMatchObject({ client_type: 'confidential' });
    });

    it('refuses a private key, an unknown method, private_key_jwt without keys, and malformed fields (400)', async () => {
      const before = await clientCount();
      const privateJwk = await api('POST', '/api/clients/', keyClientBody({ jwks: { keys: [key.privateJwk] } }));
      expect(privateJwk.status, privateJwk.text).toBe(400);
      expect(privateJwk.json).toMatchObject({ error: 'invalid_client_metadata' });
      expect(String(privateJwk.json['error_description'])).toContain('private member "d"');

      const unknown = await api('POST', '/api/clients/', keyClientBody({ token_endpoint_auth_method: 'client_secret_jwt' }));
      expect(unknown.status, unknown.text).toBe(400);
      expect(unknown.json['error']).toBe('invalid_request');
      expect(unknown.json['fields']).toHaveProperty('token_endpoint_auth_method');

      const withoutKeys = await api('POST', '/api/clients/', keyClientBody({ jwks: undefined }));
      expect(withoutKeys.status, withoutKeys.text).toBe(400);
      expect(withoutKeys.json).toMatchObject({ error: 'invalid_client_metadata', error_description: expect.stringContaining('jwks or jwks_uri') });

      const publicWithKey = await api('POST', '/api/clients/', keyClientBody({ client_type: 'public', grant_types: ['authorization_code'], redirect_uris: [REDIRECT_URI] }));
      expect(publicWithKey.status, publicWithKey.text).toBe(400);
      const confidentialNone = await api('POST', '/api/clients/', { client_name: 'x', client_type: 'confidential', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT_URI] });
      expect(confidentialNone.status, confidentialNone.text).toBe(400);

      const malformed = await api('POST', '/api/clients/', keyClientBody({ jwks: [key.publicJwk], jwks_uri: 7, require_pushed_authorization_requests: 'yes', require_signed_request_object: 1 }));
      expect(malformed.status, malformed.text).toBe(400);
      expect(Object.keys(malformed.json['fields'] as Json).sort()).toEqual(['jwks', 'jwks_uri', 'require_pushed_authorization_requests', 'require_signed_request_object']);
      expect(await clientCount()).toBe(before);
    });

    it('has no secret to rotate for private_key_jwt, and switches between a key and a secret', async () => {
      const created = await api('POST', '/api/clients/', keyClientBody());
      expect(created.status, created.text).toBe(201);
      const id = String(created.json['client_id']);
      const rotate = await api('POST', `/api/clients/${id}/rotate-secret/`);
      expect(rotate.status, rotate.text).toBe(400);
      expect(rotate.json).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('private_key_jwt') });
      expect((await server.latchkey.storage.clients.find(id))?.hasSecret).toBe(false);

      // Keys cannot be dropped while they are how the client signs in.
      const dropKeys = await api('PATCH', `/api/clients/${id}/`, { jwks: null });
      expect(dropKeys.status, dropKeys.text).toBe(400);
      const toUri = await api('PATCH', `/api/clients/${id}/`, { jwks: null, jwks_uri: 'https://keys.example.com/jwks.json' });
      expect(toUri.status, toUri.text).toBe(200);
      expect(toUri.json).toMatchObject({ jwks: null, jwks_uri: 'https://keys.example.com/jwks.json' });
      const backToJwks = await api('PATCH', `/api/clients/${id}/`, { jwks: jwks(), jwks_uri: null });
      expect(backToJwks.json).toMatchObject({ jwks: jwks(), jwks_uri: null });
      expect(await keyGrant(id)).toMatch(ACCESS_TOKEN);

      // To a secret: one is made and shown once; the key no longer authenticates.
      const toSecret = await api('PATCH', `/api/clients/${id}/`, { token_endpoint_auth_method: 'client_secret_basic' });
      expect(toSecret.status, toSecret.text).toBe(200);
      expect(toSecret.json).toMatchObject({ client_type: 'confidential', token_endpoint_auth_method: 'client_secret_basic', client_secret: expect.any(String) });
      expect(await oauthError(keyGrant(id))).toBe('invalid_client');
      expect((await api('POST', `/api/clients/${id}/rotate-secret/`)).status).toBe(200);

      // Back to the key: the secret is dropped.
      const toKey = await api('PATCH', `/api/clients/${id}/`, { token_endpoint_auth_method: 'private_key_jwt' });
      expect(toKey.status, toKey.text).toBe(200);
      expect(toKey.json['client_secret']).toBeUndefined();
      expect(await server.latchkey.storage.clients.find(id)).toMatchObject({ isPublic: false, hasSecret: false });
      expect(await keyGrant(id)).toMatch(ACCESS_TOKEN);

      // A requirement switched off goes away.
      await api('PATCH', `/api/clients/${id}/`, { require_pushed_authorization_requests: true });
      expect((await server.latchkey.storage.clients.find(id))?.metadata['require_pushed_authorization_requests']).toBe(true);
      const off = await api('PATCH', `/api/clients/${id}/`, { require_pushed_authorization_requests: false });
      expect(off.json['require_pushed_authorization_requests']).toBe(false);
      expect((await server.latchkey.storage.clients.find(id))?.metadata['require_pushed_authorization_requests']).toBeUndefined();
    });
  });

  describe('admin pages', () => {
    let agent: UserAgent;
    beforeAll(async () => {
      const staff = await makeUser(server.latchkey, { isStaff: true });
      agent = await signIn(server.url, staff);
    });

    const submit = (pagePath: string, action: string, fields: Record<string, string | string[]>) => submitForm(agent, server.url, pagePath, action, fields);

    const appFields = (extra: Record<string, string | string[]> = {}) => ({
      name: `Keyed app ${randomBytes(3).toString('hex')}`,
      client_type: 'confidential',
      grant_types: ['client_credentials'],
      scope: 'openid',
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: JSON.stringify(jwks()),
      ...extra,
    });

    it('registers a private_key_jwt application: no secret shown, none to rotate, keys kept on edit', async () => {
      const form = await (await agent.fetch(`${server.url}/admin/applications/new`)).text();
      expect(form).toMatch(/<option value="client_secret_basic" selected>/);
      expect(form).toContain('name="require_pushed_authorization_requests"');

      const shown = await submit('/admin/applications/new', '/admin/applications/new', appFields({ require_pushed_authorization_requests: 'yes' }));
      expect(shown.status, shown.html.slice(0, 2000)).toBe(200);
      expect(shown.html).not.toContain('data-testid="client-secret"');
      expect(shown.html).toContain('private_key_jwt');
      const id = /data-testid="client-id"[^>]*>([^<]*)</.exec(shown.html)?.[1] ?? '';
      const stored = await server.latchkey.storage.clients.find(id);
      expect(stored).toMatchObject({ isPublic: false, hasSecret: false, metadata: { token_endpoint_auth_method: 'private_key_jwt', jwks: jwks(), require_pushed_authorization_requests: true } });
      expect(await keyGrant(id)).toMatch(ACCESS_TOKEN);

      const edit = await (await agent.fetch(`${server.url}/admin/applications/${id}`)).text();
      expect(edit).toMatch(/<option value="private_key_jwt" selected>/);
      expect(edit).toMatch(/name="require_pushed_authorization_requests" value="yes" checked/);
      expect(edit).not.toContain('/rotate-secret"');
      const rotate = await agent.fetch(`${server.url}/admin/applications/${id}/rotate-secret`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf: formOf(edit, `/admin/applications/${id}`).csrf, confirm: 'yes' }).toString(),
      });
      expect(rotate.status).toBe(400);
      expect(await rotate.text()).toContain('no secret to rotate');

      // Saving the form as shown keeps the keys and the type; unticking drops the requirement.
      const saved = await submit(`/admin/applications/${id}`, `/admin/applications/${id}`, appFields({ name: 'Renamed keyed app' }));
      expect(saved.status, saved.html.slice(0, 2000)).toBe(303);
      expect(await server.latchkey.storage.clients.find(id)).toMatchObject({ name: 'Renamed keyed app', isPublic: false, hasSecret: false });
      expect((await server.latchkey.storage.clients.find(id))?.metadata['require_pushed_authorization_requests']).toBeUndefined();
    });

    it('re-renders the form for unreadable or private keys', async () => {
      const before = await clientCount();
      const notJson = await submit('/admin/applications/new', '/admin/applications/new', appFields({ jwks: '{"keys": [' }));
      expect(notJson.status).toBe(400);
      expect(notJson.html).toContain('Paste a JWK Set as JSON');
      const privateKey = await submit('/admin/applications/new', '/admin/applications/new', appFields({ jwks: JSON.stringify({ keys: [key.privateJwk] }) }));
      expect(privateKey.status).toBe(400);
      expect(privateKey.html).toContain('register public keys only');
      const badMethod = await submit('/admin/applications/new', '/admin/applications/new', appFields({ token_endpoint_auth_method: 'client_secret_jwt' }));
      expect(badMethod.status).toBe(400);
      expect(badMethod.html).toContain('Choose how the application authenticates.');
      expect(await clientCount()).toBe(before);
    });
  });
});
