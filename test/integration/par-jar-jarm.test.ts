/**
 * Pushed authorization requests (RFC 9126), JWT-secured authorization requests (RFC 9101),
 * JARM and private_key_jwt / client_secret_post client authentication, driven through
 * openid-client 6 against a real server, with the login and consent pages walked over HTTP.
 * Every refusal has a positive control next to it, so a test fails if the protection goes,
 * not only if the flow breaks.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { beforeAll, describe, expect, it } from 'vitest';
import type { NewClient } from '../../src/storage/clients.js';
import { adminLogin } from '../helpers/admin.js';
import { formOf, UserAgent } from '../helpers/browserless.js';
import { oauthError } from '../helpers/oauth-error.js';
import { readAnswer } from '../helpers/http.js';
import { discover, makeClient, makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { ACCESS_TOKEN, OPAQUE_TOKEN } from '../helpers/shapes.js';

type Login = { username: string; password: string };
type Json = Record<string, unknown>;

/** What provider/src/oidc/provider.ts enables for client assertions and request objects. */
const CLIENT_JWS_ALGS = ['RS256', 'PS256', 'ES256', 'Ed25519', 'EdDSA'];

interface ClientKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

/** A key pair for one algorithm family; the client registers only the public half. */
async function clientKey(alg: 'RS256' | 'PS256' | 'ES256' | 'Ed25519', kid = `${alg}-${Math.random().toString(36).slice(2, 10)}`): Promise<ClientKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, use: 'sig' } };
}

interface ClientKeys {
  rs: ClientKey;
  ps: ClientKey;
  es: ClientKey;
  ed: ClientKey;
  jwks: { keys: JWK[] };
}

async function clientKeys(): Promise<ClientKeys> {
  const [rs, ps, es, ed] = await Promise.all([clientKey('RS256'), clientKey('PS256'), clientKey('ES256'), clientKey('Ed25519')]);
  return { rs, ps, es, ed, jwks: { keys: [rs.jwk, ps.jwk, es.jwk, ed.jwk] } };
}

/**
 * The key and openid-client options that sign with `alg`. openid-client names Ed25519 keys
 * "Ed25519"; the older "EdDSA" identifier is set on the header before signing.
 */
function signerFor(keys: ClientKeys, alg: string): { key: oidc.PrivateKey; options: oidc.ModifyAssertionOptions } {
  const pick: Record<string, ClientKey> = { RS256: keys.rs, PS256: keys.ps, ES256: keys.es, Ed25519: keys.ed, EdDSA: keys.ed };
  const key = pick[alg];
  if (!key) throw new Error(`no test key for ${alg}: prove it works before advertising it`);
  const options: oidc.ModifyAssertionOptions = alg === 'EdDSA' ? { [oidc.modifyAssertion]: (header) => void (header['alg'] = 'EdDSA') } : {};
  return { key: { key: key.privateKey, kid: key.kid }, options };
}

/** PKCE, state and nonce, and the checks openid-client makes with them at the callback. */
async function authParams(extra: Record<string, string> = {}) {
  const pkceCodeVerifier = oidc.randomPKCECodeVerifier();
  const expectedState = oidc.randomState();
  const expectedNonce = oidc.randomNonce();
  return {
    params: {
      redirect_uri: REDIRECT_URI,
      scope: 'openid profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state: expectedState,
      nonce: expectedNonce,
      ...extra,
    },
    checks: { pkceCodeVerifier, expectedState, expectedNonce, idTokenExpected: true },
  };
}

interface Browsed {
  /** The redirect to the client, when the flow got there. */
  callback?: URL;
  status: number;
  html: string;
}

/**
 * The browser's part: follows redirects, signs in and allows consent when those pages come;
 * stops at the client's callback or at any other page (an error page, or the login page
 * when `login` is null).
 */
async function browse(agent: UserAgent, url: URL, login: Login | null): Promise<Browsed> {
  const isCallback = (u: URL) => u.href.startsWith(REDIRECT_URI);
  let { response, url: at } = await agent.follow(url, isCallback);
  for (let step = 0; step < 5; step++) {
    if (isCallback(at)) return { callback: at, status: response.status, html: '' };
    const html = await response.text();
    let posted: Response;
    if (html.includes('/login"') && login) {
      const form = formOf(html, '/login');
      posted = await agent.postForm(new URL(form.action, at), { csrf: form.csrf, ...login });
    } else if (html.includes('/confirm"') && login) {
      const form = formOf(html, '/confirm');
      posted = await agent.postForm(new URL(form.action, at), { csrf: form.csrf, decision: 'allow' });
    } else {
      return { status: response.status, html };
    }
    const location = posted.headers.get('location');
    if (!location) return { status: posted.status, html: await posted.text() };
    ({ response, url: at } = await agent.follow(new URL(location, at), isCallback));
  }
  throw new Error(`the flow did not end, last at ${at.href}`);
}

/** Signs in and allows consent, stopping before the resume that would issue the code. */
async function upToLastResume(agent: UserAgent, url: URL, login: Login): Promise<URL> {
  let { response, url: at } = await agent.follow(url);
  for (let step = 0; step < 4; step++) {
    const html = await response.text();
    if (html.includes('/login"')) {
      const form = formOf(html, '/login');
      const posted = await agent.postForm(new URL(form.action, at), { csrf: form.csrf, ...login });
      ({ response, url: at } = await agent.follow(new URL(posted.headers.get('location') ?? '', at)));
    } else if (html.includes('/confirm"')) {
      const form = formOf(html, '/confirm');
      const posted = await agent.postForm(new URL(form.action, at), { csrf: form.csrf, decision: 'allow' });
      return new URL(posted.headers.get('location') ?? '', at);
    } else {
      throw new Error(`unexpected page at ${at.href} (${response.status}):\n${html.slice(0, 800)}`);
    }
  }
  throw new Error('no consent page');
}

/** The request was accepted: a fresh browser lands on the login page. */
async function reachesLogin(url: URL): Promise<boolean> {
  const result = await browse(new UserAgent(), url, null);
  return result.status === 200 && result.html.includes('/login"');
}

/**
 * The OAuth error an authorization request ended in: on our error page (no redirect), or in
 * the redirect to the client (plain or as a JARM JWT). Fails if a code was issued.
 */
async function authorizationError(url: URL): Promise<{ error: string; description: string }> {
  const result = await browse(new UserAgent(), url, null);
  if (result.callback) {
    const query = result.callback.searchParams;
    expect(query.get('code')).toBeNull();
    const jarm = query.get('response');
    if (jarm) {
      const claims = decodeJwt(jarm);
      expect(claims['code']).toBeUndefined();
      return { error: String(claims['error']), description: String(claims['error_description'] ?? '') };
    }
    return { error: query.get('error') ?? '', description: query.get('error_description') ?? '' };
  }
  expect(result.status, result.html.slice(0, 800)).toBe(400);
  return {
    error: /Error code: <code>([^<]*)<\/code>/.exec(result.html)?.[1] ?? '',
    description: (/<p class="alert" role="alert">([\s\S]*?)<\/p>/.exec(result.html)?.[1] ?? '').replace(/&#39;/g, "'").trim(),
  };
}

/** Records what openid-client POSTs (to read the client assertion it sent). */
function recordBodies(config: oidc.Configuration): URLSearchParams[] {
  const bodies: URLSearchParams[] = [];
  config[oidc.customFetch] = (url, options) => {
    if (typeof options.body === 'string') bodies.push(new URLSearchParams(options.body));
    else if (options.body instanceof URLSearchParams) bodies.push(new URLSearchParams(options.body));
    return fetch(url, options as RequestInit);
  };
  return bodies;
}

describeOnBackends('PAR, JAR and JARM through openid-client (%s)', (fx) => {
  let meta: Json;
  let keys: ClientKeys;
  let login: Login;
  let userId: string;

  beforeAll(async () => {
    meta = (await (await fetch(`${fx.server.issuer}/.well-known/openid-configuration`)).json()) as Json;
    keys = await clientKeys();
    const user = await makeUser(fx.server.latchkey);
    login = { username: user.username, password: PASSWORD };
    userId = String(user.id);
  });

  /** openid-client configured from discovery for one client and one way to authenticate. */
  const relyingParty = (clientId: string, auth: oidc.ClientAuth) =>
    oidc.discovery(new URL(fx.server.issuer), clientId, undefined, auth, { execute: [oidc.allowInsecureRequests] });

  /** A confidential client that authenticates with private_key_jwt and the test keys. */
  async function keyClient(extra: Partial<NewClient> = {}): Promise<string> {
    const { client, clientSecret } = await makeClient(fx.server.latchkey, {
      tokenEndpointAuthMethod: 'private_key_jwt',
      jwks: keys.jwks,
      grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
      ...extra,
    });
    expect(clientSecret).toBeNull();
    expect(client.isPublic).toBe(false);
    return client.clientId;
  }

  const keyAuth = (key: ClientKey = keys.rs) => oidc.PrivateKeyJwt({ key: key.privateKey, kid: key.kid });

  /** Walks the pages and redeems the code with openid-client (which checks the ID token). */
  async function complete(config: oidc.Configuration, url: URL, checks: Awaited<ReturnType<typeof authParams>>['checks']) {
    const browsed = await browse(new UserAgent(), url, login);
    if (!browsed.callback) throw new Error(`no callback (${browsed.status}):\n${browsed.html.slice(0, 1500)}`);
    const tokens = await oidc.authorizationCodeGrant(config, browsed.callback, checks);
    expect(tokens.claims()?.sub).toBe(userId);
    return { tokens, callback: browsed.callback };
  }

  it('advertises PAR, signed request objects and JARM, and nothing it cannot do', () => {
    expect(meta['pushed_authorization_request_endpoint']).toBe(`${fx.server.issuer}/request`);
    expect(meta['require_pushed_authorization_requests']).toBeUndefined();
    expect(meta['request_parameter_supported']).toBe(true);
    expect(meta['request_uri_parameter_supported']).toBe(false);
    expect(meta['require_signed_request_object']).toBeUndefined();
    // Signed only: no `none`, no HMAC (secrets are stored hashed), no encryption.
    expect(meta['request_object_signing_alg_values_supported']).toEqual(CLIENT_JWS_ALGS);
    expect(meta['request_object_encryption_alg_values_supported']).toBeUndefined();
    expect(meta['response_modes_supported']).toEqual(expect.arrayContaining(['query', 'form_post', 'jwt', 'query.jwt', 'fragment.jwt', 'form_post.jwt']));
    // JARM responses are signed with our own keys: the algorithms we hold keys for.
    expect([...(meta['authorization_signing_alg_values_supported'] as string[])].sort()).toEqual(['ES256', 'RS256']);
    expect(meta['authorization_encryption_alg_values_supported']).toBeUndefined();
    expect(meta['token_endpoint_auth_methods_supported']).toEqual(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']);
    expect(meta['token_endpoint_auth_signing_alg_values_supported']).toEqual(CLIENT_JWS_ALGS);
  });

  describe('pushed authorization requests', () => {
    it('pushes the request, completes the code flow, and the request_uri works once', async () => {
      const { client, clientSecret } = await makeClient(fx.server.latchkey);
      const config = await discover(fx.server.issuer, client.clientId, clientSecret);
      const { params, checks } = await authParams();
      const url = await oidc.buildAuthorizationUrlWithPAR(config, params);
      // Only the reference travels through the browser.
      expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
      expect(url.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:[\w-]{20,}$/);
      const { tokens } = await complete(config, url, checks);
      expect(tokens.access_token).toMatch(ACCESS_TOKEN);

      const again = await authorizationError(url);
      expect(again.error).toBe('invalid_request_uri');
    });

    it('issues one code when two browsers complete the same request_uri at the same moment', async () => {
      const { client, clientSecret } = await makeClient(fx.server.latchkey);
      const config = await discover(fx.server.issuer, client.clientId, clientSecret);
      const url = await oidc.buildAuthorizationUrlWithPAR(config, (await authParams()).params);
      const agents = [new UserAgent(), new UserAgent()];
      // Both sign in and allow; the last step (which issues the code) is then sent by both at once.
      const resumes = await Promise.all(agents.map((agent) => upToLastResume(agent, url, login)));
      const answers = await Promise.all(agents.map((agent, i) => agent.fetch(resumes[i]!)));
      const outcomes = await Promise.all(
        answers.map(async (answer) => {
          const location = answer.headers.get('location');
          if (!location) return `page ${answer.status}: ${/Error code: <code>([^<]*)</.exec(await answer.text())?.[1] ?? ''}`;
          const query = new URL(location, fx.server.url).searchParams;
          return query.get('code') ? 'code' : `error: ${query.get('error') ?? ''}`;
        }),
      );
      // The loser is told why: at the library's check, or at the adapter's atomic consume.
      expect(outcomes.sort()).toEqual(['code', expect.stringMatching(/invalid_request_uri$/)]);
    });

    it('answers the push with a request_uri that lives 60 seconds and needs client authentication', async () => {
      const { client, clientSecret } = await makeClient(fx.server.latchkey);
      const { params } = await authParams();
      const body = new URLSearchParams({ client_id: client.clientId, response_type: 'code', ...params });
      const push = (headers: Record<string, string>) =>
        fetch(`${fx.server.issuer}/request`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body }).then(readAnswer);
      const basic = `Basic ${Buffer.from(`${client.clientId}:${clientSecret}`).toString('base64')}`;
      const pushed = await push({ authorization: basic });
      expect(pushed.status).toBe(201);
      expect(pushed.json['expires_in']).toBe(60);
      const anonymous = await push({});
      expect(anonymous.status).toBe(401);
      expect(anonymous.json['error']).toBe('invalid_client');
    });

    it('binds a request_uri to the client that pushed it', async () => {
      const a = await makeClient(fx.server.latchkey, { name: 'Pusher' });
      const b = await makeClient(fx.server.latchkey, { name: 'Borrower' });
      const configA = await discover(fx.server.issuer, a.client.clientId, a.clientSecret);
      const url = await oidc.buildAuthorizationUrlWithPAR(configA, (await authParams()).params);
      const borrowed = new URL(url);
      borrowed.searchParams.set('client_id', b.client.clientId);
      const refused = await authorizationError(borrowed);
      expect(refused.error).toBe('invalid_request_object');
      expect(refused.description).toContain('client_id');
      // The owner can still use it: the refusal was about the client, not a spent request_uri.
      expect(await reachesLogin(url)).toBe(true);
    });

    it('refuses a request_uri that its PAR endpoint did not issue (request_uri_parameter_supported is false)', async () => {
      const a = await makeClient(fx.server.latchkey, { name: 'Fetcher' });
      const config = await discover(fx.server.issuer, a.client.clientId, a.clientSecret);
      expect(config.serverMetadata().request_uri_parameter_supported).toBe(false);
      for (const requestUri of ['https://rp.example.com/request.jwt', 'urn:ietf:params:oauth:request_uri:made-up']) {
        const url = oidc.buildAuthorizationUrl(config, { ...(await authParams()).params, request_uri: requestUri });
        expect((await authorizationError(url)).error, requestUri).toMatch(/^invalid_request(_uri)?$|request_uri_not_supported/);
      }
    });

    it('lets a request_uri expire (its lifetime follows the pushed request object exp)', async () => {
      const clientId = await keyClient();
      const config = await relyingParty(clientId, keyAuth());
      const pushedAt = Date.now();
      const shortLived = { [oidc.modifyAssertion]: (_header: Json, payload: Json) => void (payload['exp'] = Math.floor(pushedAt / 1000) + 4) };
      const jar = await oidc.buildAuthorizationUrlWithJAR(config, (await authParams()).params, { key: keys.rs.privateKey, kid: keys.rs.kid }, shortLived);
      const url = await oidc.buildAuthorizationUrlWithPAR(config, { request: jar.searchParams.get('request')! });
      expect(await reachesLogin(url)).toBe(true);
      await sleep(Math.max(0, pushedAt + 5500 - Date.now()));
      expect((await authorizationError(url)).error).toBe('invalid_request_uri');
    });

    it('refuses a plain request from a client registered with require_pushed_authorization_requests', async () => {
      const { client, clientSecret } = await makeClient(fx.server.latchkey, { requirePushedAuthorizationRequests: true });
      expect(client.metadata['require_pushed_authorization_requests']).toBe(true);
      const config = await discover(fx.server.issuer, client.clientId, clientSecret);
      const plain = await authorizationError(oidc.buildAuthorizationUrl(config, (await authParams()).params));
      expect(plain.error).toBe('invalid_request');
      expect(plain.description).toContain('Pushed Authorization Request must be used');
      const { params, checks } = await authParams();
      await complete(config, await oidc.buildAuthorizationUrlWithPAR(config, params), checks);
    });
  });

  describe('request objects (JAR)', () => {
    it('completes the code flow with a signed request object and private_key_jwt at the token endpoint', async () => {
      const clientId = await keyClient();
      const config = await relyingParty(clientId, keyAuth());
      const { params, checks } = await authParams();
      const url = await oidc.buildAuthorizationUrlWithJAR(config, params, { key: keys.rs.privateKey, kid: keys.rs.kid });
      expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request']);
      const { tokens } = await complete(config, url, checks);
      expect(tokens.refresh_token).toMatch(OPAQUE_TOKEN);
      // The refresh goes through private_key_jwt as well.
      expect((await oidc.refreshTokenGrant(config, tokens.refresh_token!)).access_token).toMatch(ACCESS_TOKEN);
    });

    it('accepts request objects signed with each advertised algorithm', async () => {
      const clientId = await keyClient();
      const config = await relyingParty(clientId, keyAuth());
      for (const alg of meta['request_object_signing_alg_values_supported'] as string[]) {
        const { key, options } = signerFor(keys, alg);
        const url = await oidc.buildAuthorizationUrlWithJAR(config, (await authParams()).params, key, options);
        expect(decodeProtectedHeader(url.searchParams.get('request')!).alg).toBe(alg);
        expect(await reachesLogin(url), alg).toBe(true);
      }
    });

    it('refuses a request object signed with a key the client did not register', async () => {
      const clientId = await keyClient();
      const config = await relyingParty(clientId, keyAuth());
      const stranger = await clientKey('RS256');
      for (const kid of [stranger.kid, keys.rs.kid]) {
        const url = await oidc.buildAuthorizationUrlWithJAR(config, (await authParams()).params, { key: stranger.privateKey, kid });
        expect((await authorizationError(url)).error, `kid ${kid}`).toBe('invalid_request_object');
      }
      const control = await oidc.buildAuthorizationUrlWithJAR(config, (await authParams()).params, { key: keys.rs.privateKey, kid: keys.rs.kid });
      expect(await reachesLogin(control)).toBe(true);
    });

    it('refuses an unsigned request object (alg none), at /o/auth and at the PAR endpoint', async () => {
      const clientId = await keyClient();
      const config = await relyingParty(clientId, keyAuth());
      const claims = { ...(await authParams()).params, client_id: clientId, response_type: 'code' };
      const unsigned = new UnsecuredJWT(claims).setIssuer(clientId).setAudience(fx.server.issuer).setIssuedAt().setExpirationTime('1m').encode();
      expect(decodeProtectedHeader(unsigned).alg).toBe('none');
      const refused = await authorizationError(oidc.buildAuthorizationUrl(config, { request: unsigned }));
      expect(refused.error).toBe('invalid_request_object');
      expect(await oauthError(oidc.buildAuthorizationUrlWithPAR(config, { request: unsigned }))).toBe('invalid_request_object');
      // The same claims, signed, are accepted.
      const signed = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: keys.es.kid, typ: 'oauth-authz-req+jwt' })
        .setIssuer(clientId)
        .setAudience(fx.server.issuer)
        .setIssuedAt()
        .setExpirationTime('1m')
        .sign(keys.es.privateKey);
      expect(await reachesLogin(oidc.buildAuthorizationUrl(config, { request: signed }))).toBe(true);
    });

    it('refuses a request object whose client_id differs from the query', async () => {
      const clientA = await keyClient();
      const clientB = await keyClient();
      const config = await relyingParty(clientA, keyAuth());
      const signer = { key: keys.rs.privateKey, kid: keys.rs.kid };
      const otherInside = await oidc.buildAuthorizationUrlWithJAR(config, (await authParams()).params, signer, {
        [oidc.modifyAssertion]: (_header: Json, payload: Json) => void (payload['client_id'] = clientB),
      });
      expect(otherInside.searchParams.get('client_id')).toBe(clientA);
      expect((await authorizationError(otherInside)).error).toBe('invalid_request_object');
      // A's request object presented under B's client_id (B holds the same keys).
      const otherOutside = await oidc.buildAuthorizationUrlWithJAR(config, (await authParams()).params, signer);
      otherOutside.searchParams.set('client_id', clientB);
      expect((await authorizationError(otherOutside)).error).toBe('invalid_request_object');
    });

    it('refuses a plain request, and a push without a request object, from a client that requires signed ones', async () => {
      const clientId = await keyClient({ requireSignedRequestObject: true });
      const config = await relyingParty(clientId, keyAuth());
      const plain = await authorizationError(oidc.buildAuthorizationUrl(config, (await authParams()).params));
      expect(plain.error).toBe('invalid_request');
      expect(plain.description).toContain('Request Object must be used');
      expect(await oauthError(oidc.buildAuthorizationUrlWithPAR(config, (await authParams()).params))).toBe('invalid_request');
      const { params, checks } = await authParams();
      await complete(config, await oidc.buildAuthorizationUrlWithJAR(config, params, { key: keys.ps.privateKey, kid: keys.ps.kid }), checks);
    });
  });

  describe('JWT-secured authorization responses (JARM)', () => {
    it('completes response_mode=jwt with openid-client verifying the response, signed with each advertised algorithm', async () => {
      for (const alg of meta['authorization_signing_alg_values_supported'] as string[]) {
        const { client, clientSecret } = await makeClient(fx.server.latchkey, { name: `JARM ${alg}` });
        // Our registration has no field for it; the provider's metadata does.
        await fx.server.latchkey.storage.clients.update(client.clientId, client.name, { ...client.metadata, authorization_signed_response_alg: alg });
        const config = await discover(fx.server.issuer, client.clientId, clientSecret);
        oidc.useJwtResponseMode(config);
        const { params, checks } = await authParams({ response_mode: 'jwt' });
        const browsed = await browse(new UserAgent(), oidc.buildAuthorizationUrl(config, params), login);
        const callback = browsed.callback!;
        expect(callback.searchParams.get('code')).toBeNull();
        const response = callback.searchParams.get('response')!;
        expect(decodeProtectedHeader(response).alg).toBe(alg);
        expect(decodeJwt(response)).toMatchObject({ iss: fx.server.issuer, aud: client.clientId, state: checks.expectedState });
        const tokens = await oidc.authorizationCodeGrant(config, callback, checks);
        expect(tokens.claims()?.sub).toBe(userId);
      }
    });

    it('delivers the response JWT in each advertised JWT response mode', async () => {
      const { client, clientSecret } = await makeClient(fx.server.latchkey, { name: 'JARM modes' });
      const config = await discover(fx.server.issuer, client.clientId, clientSecret);
      oidc.useJwtResponseMode(config);
      const modes = (meta['response_modes_supported'] as string[]).filter((mode) => mode === 'jwt' || mode.endsWith('.jwt'));
      expect(modes.sort()).toEqual(['form_post.jwt', 'fragment.jwt', 'jwt', 'query.jwt']);
      for (const mode of modes) {
        const { params, checks } = await authParams();
        // openid-client asks for `jwt` (query.jwt for code); the other modes are set by hand.
        const url = oidc.buildAuthorizationUrl(config, params);
        url.searchParams.set('response_mode', mode);
        const browsed = await browse(new UserAgent(), url, login);
        let delivered: URL | Request;
        if (mode === 'form_post.jwt') {
          // The provider's auto-submitting form, posted as the browser would.
          expect(browsed.html).toContain(`action="${REDIRECT_URI}"`);
          const response = /name="response" value="([^"]+)"/.exec(browsed.html)?.[1] ?? '';
          delivered = new Request(REDIRECT_URI, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ response }) });
        } else if (mode === 'fragment.jwt') {
          // The page's script hands the fragment to the server, where openid-client checks it.
          const callback = new URL(browsed.callback!);
          expect(callback.search).toBe('');
          callback.search = callback.hash.slice(1);
          callback.hash = '';
          delivered = callback;
        } else {
          delivered = browsed.callback!;
        }
        const tokens = await oidc.authorizationCodeGrant(config, delivered, checks);
        expect(tokens.claims()?.sub, mode).toBe(userId);
      }
    });

    it('has openid-client refuse a tampered or unsigned response', async () => {
      const { client, clientSecret } = await makeClient(fx.server.latchkey, { name: 'JARM tamper' });
      const config = await discover(fx.server.issuer, client.clientId, clientSecret);
      oidc.useJwtResponseMode(config);
      const { params, checks } = await authParams({ response_mode: 'jwt' });
      const callback = (await browse(new UserAgent(), oidc.buildAuthorizationUrl(config, params), login)).callback!;
      const response = callback.searchParams.get('response')!;
      const [header, payload, signature] = response.split('.') as [string, string, string];
      const claims = decodeJwt(response);
      const withResponse = (value: string) => {
        const forged = new URL(callback);
        forged.searchParams.set('response', value);
        return forged;
      };
      const BAD_SIGNATURE = { code: 'OAUTH_INVALID_RESPONSE', cause: { message: 'JWT signature verification failed' } };
      const swapped = Buffer.from(JSON.stringify({ ...claims, code: `${String(claims['code'])}x` })).toString('base64url');
      await expect(oidc.authorizationCodeGrant(config, withResponse(`${header}.${swapped}.${signature}`), checks)).rejects.toMatchObject(BAD_SIGNATURE);
      const flipped = `${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BB' : 'AA'}`;
      await expect(oidc.authorizationCodeGrant(config, withResponse(`${header}.${payload}.${flipped}`), checks)).rejects.toMatchObject(BAD_SIGNATURE);
      const unsigned = new UnsecuredJWT(claims).encode();
      await expect(oidc.authorizationCodeGrant(config, withResponse(unsigned), checks)).rejects.toMatchObject({
        code: 'OAUTH_INVALID_RESPONSE',
        cause: { message: 'unexpected JWT "alg" header parameter' },
      });
      // The genuine response still redeems: the refusals were about the forgeries.
      expect((await oidc.authorizationCodeGrant(config, callback, checks)).access_token).toMatch(ACCESS_TOKEN);
    });
  });

  describe('client authentication at the token endpoint', () => {
    it('accepts private_key_jwt signed with each advertised algorithm', async () => {
      const clientId = await keyClient();
      const algs = meta['token_endpoint_auth_signing_alg_values_supported'] as string[];
      expect(algs.length).toBeGreaterThan(0);
      for (const alg of algs) {
        const { key, options } = signerFor(keys, alg);
        const config = await relyingParty(clientId, oidc.PrivateKeyJwt(key, options));
        const sent = recordBodies(config);
        const tokens = await oidc.clientCredentialsGrant(config);
        expect(tokens.access_token, alg).toMatch(ACCESS_TOKEN);
        const assertion = sent.at(-1)?.get('client_assertion');
        expect(decodeProtectedHeader(assertion!).alg).toBe(alg);
      }
    });

    it('refuses an assertion from an unregistered key, a replayed assertion, and a secret', async () => {
      const clientId = await keyClient();
      const stranger = await clientKey('ES256');
      for (const kid of [stranger.kid, keys.es.kid]) {
        const config = await relyingParty(clientId, oidc.PrivateKeyJwt({ key: stranger.privateKey, kid }));
        expect(await oauthError(oidc.clientCredentialsGrant(config)), `kid ${kid}`).toBe('invalid_client');
      }
      const config = await relyingParty(clientId, keyAuth(keys.es));
      const sent = recordBodies(config);
      expect((await oidc.clientCredentialsGrant(config)).access_token).toMatch(ACCESS_TOKEN);
      const replay = await fetch(`${fx.server.issuer}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: sent.at(-1)! }).then(readAnswer);
      expect(replay.status).toBe(401);
      expect(replay.json['error']).toBe('invalid_client');
      const withSecret = await relyingParty(clientId, oidc.ClientSecretBasic('no secret was ever made for this client'));
      expect(await oauthError(oidc.clientCredentialsGrant(withSecret))).toBe('invalid_client');
    });

    it('accepts client_secret_post for a client registered with it', async () => {
      const { client, clientSecret } = await makeClient(fx.server.latchkey, { tokenEndpointAuthMethod: 'client_secret_post', grantTypes: ['client_credentials'] });
      expect(client.metadata.token_endpoint_auth_method).toBe('client_secret_post');
      const config = await relyingParty(client.clientId, oidc.ClientSecretPost(clientSecret!));
      const sent = recordBodies(config);
      expect((await oidc.clientCredentialsGrant(config)).access_token).toMatch(ACCESS_TOKEN);
      expect(sent.at(-1)?.get('client_secret')).toBe(clientSecret);
      const wrong = await relyingParty(client.clientId, oidc.ClientSecretPost(`${clientSecret}x`));
      expect(await oauthError(oidc.clientCredentialsGrant(wrong))).toBe('invalid_client');
    });
  });
});

describeOnBackends('REQUIRE_PAR for the whole server (%s)', { REQUIRE_PAR: 'true' }, (fx) => {
  it('says so in discovery, refuses plain requests and completes pushed ones', async () => {
    const meta = (await (await fetch(`${fx.server.issuer}/.well-known/openid-configuration`)).json()) as Json;
    expect(meta['require_pushed_authorization_requests']).toBe(true);
    const { client, clientSecret } = await makeClient(fx.server.latchkey);
    const config = await discover(fx.server.issuer, client.clientId, clientSecret);
    const plain = await authorizationError(oidc.buildAuthorizationUrl(config, (await authParams()).params));
    expect(plain.error).toBe('invalid_request');
    expect(plain.description).toContain('Pushed Authorization Request must be used');
    const user = await makeUser(fx.server.latchkey);
    const { params, checks } = await authParams();
    const browsed = await browse(new UserAgent(), await oidc.buildAuthorizationUrlWithPAR(config, params), { username: user.username, password: PASSWORD });
    expect((await oidc.authorizationCodeGrant(config, browsed.callback!, checks)).access_token).toMatch(ACCESS_TOKEN);
  });

  it('still signs staff into the admin pages (their request is pushed too)', async () => {
    const staff = await makeUser(fx.server.latchkey, { isStaff: true });
    const agent = new UserAgent();
    const first = await agent.fetch(`${fx.server.url}/admin/`);
    const location = new URL(first.headers.get('location') ?? '', fx.server.url);
    expect(location.pathname).toBe('/o/auth');
    expect([...location.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    const { response, html } = await adminLogin(fx.server.url, agent, staff.username, PASSWORD);
    expect(response.status).toBe(200);
    expect(html).toContain(staff.username);
    expect(html).not.toContain('name="password"');
  });
});
