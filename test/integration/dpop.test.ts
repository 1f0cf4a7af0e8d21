import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_DPOP_PROOF_MODEL } from '../../src/web/api/dpop-proof.js';
import { sweepExpired } from '../../src/storage/oidc-payloads.js';
import type { RunningLatchkey } from '../../src/start.js';
import { adminLogin } from '../helpers/admin.js';
import { formOf, UserAgent } from '../helpers/browserless.js';
import { freshDatabase, type TestDatabase } from '../helpers/database.js';
import { BACKENDS } from '../helpers/env.js';
import { readAnswer, type Answer } from '../helpers/http.js';
import { runProcess, type ProcessResult } from '../helpers/process.js';
import { apiAuthorization, apiResourceOf, authorize, discover, makeClient, makeUser, PASSWORD } from '../helpers/rp.js';
import { startOnDatabase, startTestServer, type TestServer } from '../helpers/server.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { OPAQUE_TOKEN } from '../helpers/shapes.js';

/**
 * DPoP (RFC 9449) end to end: tokens bound to a client key at /o/token (openid-client's
 * DPoP handle), used at userinfo and at our REST API only with a fresh proof from that key.
 * Bad proofs are hand-made with jose, each differing from a good one in one respect.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const DPOP_ALGS = 'algs="ES256 Ed25519 EdDSA"';

interface Key extends oidc.CryptoKeyPair {
  /** The public JWK, as a proof header carries it. */
  jwk: JWK;
  jkt: string;
}

async function newKey(): Promise<Key> {
  const pair = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(pair.publicKey);
  return { ...pair, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');
const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A DPoP proof signed by `key`; `header` replaces header fields (alg, typ, jwk). */
async function signProof(key: Key, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims as JWTPayload).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk, ...header }).sign(key.privateKey);
}

/** 401 with an RFC 9449 challenge and the JSON error body. */
function expectDpopRefusal(answer: Answer, error: 'invalid_token' | 'invalid_dpop_proof', label: string): void {
  expect(answer.status, `${label}: ${answer.text}`).toBe(401);
  expect(answer.json['error'], label).toBe(error);
  expect(answer.json['error_description'], label).toEqual(expect.any(String));
  const challenge = answer.headers.get('www-authenticate') ?? '';
  expect(challenge, label).toMatch(new RegExp(`^DPoP error="${error}", error_description="[^"]+", ${DPOP_ALGS}$`));
}

/**
 * 403 insufficient_scope for a token proven with DPoP: the RFC 9449 challenge (the DPoP
 * scheme, never Bearer) names the scope the route needs.
 */
function expectDpopInsufficientScope(answer: Answer, scope: string, label: string): void {
  expect(answer.status, `${label}: ${answer.text}`).toBe(403);
  expect(answer.json['error'], label).toBe('insufficient_scope');
  expect(answer.json['error_description'], label).toEqual(expect.any(String));
  expect(answer.headers.get('cache-control'), label).toBe('no-store');
  const challenge = answer.headers.get('www-authenticate') ?? '';
  expect(challenge, label).toMatch(new RegExp(`^DPoP error="insufficient_scope", error_description="[^"]+", scope="${scope}", ${DPOP_ALGS}$`));
}

/** The challenge openid-client read from a 401 (WWWAuthenticateChallengeError). */
async function challengeOf(promise: Promise<unknown>): Promise<{ scheme: string; parameters: Record<string, string> }> {
  const error = (await promise.then(
    () => {
      throw new Error('expected the request to be refused');
    },
    (e: unknown) => e,
  )) as { status?: number; cause?: Array<{ scheme: string; parameters: Record<string, string> }> };
  expect(error.status).toBe(401);
  expect(Array.isArray(error.cause), String(error)).toBe(true);
  return error.cause![0]!;
}

describeOnBackends('DPoP (RFC 9449) (%s)', (fx) => {
  /** Confidential client: authorization_code, refresh_token, client_credentials; API scope users:read. */
  let config: oidc.Configuration;
  /** Public client (PKCE, no secret): its refresh tokens are bound too. */
  let publicConfig: oidc.Configuration;
  let user: Awaited<ReturnType<typeof makeUser>>;
  const meUrl = () => `${fx.server.url}/auth/me/`;

  beforeAll(async () => {
    const confidential = await makeClient(fx.server.latchkey, { grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'], apiScopes: ['users:read'] });
    config = await discover(fx.server.issuer, confidential.client.clientId, confidential.clientSecret);
    const pub = await makeClient(fx.server.latchkey, { name: 'Public App', isPublic: true });
    publicConfig = await discover(fx.server.issuer, pub.client.clientId, null);
    user = await makeUser(fx.server.latchkey);
  });

  /**
   * Login and consent over HTTP, then the code exchange through openid-client with `options`;
   * `params` adds authorization parameters (a resource, scopes).
   */
  async function codeFlow(rp: oidc.Configuration, options: { DPoP?: oidc.DPoPHandle } = {}, params: Record<string, string> = {}) {
    const result = await authorize(rp, new UserAgent(), { username: user.username, password: PASSWORD }, params);
    return oidc.authorizationCodeGrant(
      rp,
      result.callbackUrl,
      { pkceCodeVerifier: result.codeVerifier, expectedState: result.state, expectedNonce: result.nonce, idTokenExpected: true },
      undefined,
      options,
    );
  }

  const me = async (token: string, { scheme = 'DPoP', proof }: { scheme?: string; proof?: string } = {}) =>
    readAnswer(await fetch(meUrl(), { headers: { authorization: `${scheme} ${token}`, ...(proof ? { dpop: proof } : {}) } }));

  /** Claims of a good proof for GET /auth/me/ with `token`; `overrides` changes one. */
  const claimsFor = (token: string, overrides: Record<string, unknown> = {}) => ({
    jti: randomBytes(16).toString('base64url'),
    htm: 'GET',
    htu: meUrl(),
    iat: nowSeconds(),
    ath: sha256(token),
    ...overrides,
  });

  it('is switched on and advertised in discovery', () => {
    expect(config.serverMetadata().dpop_signing_alg_values_supported).toEqual(['ES256', 'Ed25519', 'EdDSA']);
  });

  describe('authorization code + PKCE with DPoP, then userinfo', () => {
    let key: Key;
    let tokens: oidc.TokenEndpointResponse;
    beforeAll(async () => {
      key = await newKey();
      tokens = await codeFlow(config, { DPoP: oidc.getDPoPHandle(config, key) });
    });

    it('issues a DPoP token bound to the key (token_type DPoP, cnf.jkt)', async () => {
      expect(tokens.token_type.toLowerCase()).toBe('dpop');
      const introspection = await oidc.tokenIntrospection(config, tokens.access_token);
      expect(introspection).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: key.jkt } });
    });

    it('answers userinfo with a proof from the key', async () => {
      const info = await oidc.fetchUserInfo(config, tokens.access_token, String(user.id), { DPoP: oidc.getDPoPHandle(config, key) });
      expect(info.sub).toBe(String(user.id));
    });

    it('refuses the same token at userinfo as a Bearer token', async () => {
      const challenge = await challengeOf(oidc.fetchUserInfo(config, tokens.access_token, String(user.id)));
      expect(challenge).toMatchObject({ scheme: 'dpop', parameters: { error: 'invalid_token' } });
      const raw = await fetch(`${fx.server.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect(raw.status).toBe(401);
    });

    it('refuses a proof from another key at userinfo', async () => {
      const other = oidc.getDPoPHandle(config, await newKey());
      const challenge = await challengeOf(oidc.fetchUserInfo(config, tokens.access_token, String(user.id), { DPoP: other }));
      expect(challenge).toMatchObject({ scheme: 'dpop', parameters: { error: 'invalid_token' } });
    });

    it('refuses a userinfo proof used twice, also when both arrive at once', async () => {
      const userinfo = `${fx.server.issuer}/me`;
      const proof = await signProof(key, { ...claimsFor(tokens.access_token), htu: userinfo });
      const call = () => fetch(userinfo, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: proof } });
      expect((await call()).status).toBe(200);
      expect((await call()).status).toBe(401);

      const fresh = await signProof(key, { ...claimsFor(tokens.access_token), htu: userinfo });
      const parallel = await Promise.all(
        Array.from({ length: 4 }, () => fetch(userinfo, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: fresh } })),
      );
      expect(parallel.map((r) => r.status).sort()).toEqual([200, 401, 401, 401]);
    });
  });

  describe('a DPoP-bound access JWT for our REST API', () => {
    let key: Key;
    let token: string;
    beforeAll(async () => {
      key = await newKey();
      token = (await codeFlow(config, { DPoP: oidc.getDPoPHandle(config, key) }, apiAuthorization(fx.server.latchkey, ['users:read']))).access_token;
      expect(decodeJwt(token)).toMatchObject({ sub: String(user.id), aud: apiResourceOf(fx.server.latchkey), scope: 'users:read', cnf: { jkt: key.jkt } });
    });

    /** `method path` with the token in the DPoP scheme and a fresh proof for exactly that request (none: `proof: null`). */
    async function call(method: string, path: string, { json, proof }: { json?: unknown; proof?: null } = {}): Promise<Answer> {
      const url = `${fx.server.url}${path}`;
      const headers: Record<string, string> = { authorization: `DPoP ${token}`, accept: 'application/json' };
      if (proof !== null) headers['dpop'] = await signProof(key, { jti: randomBytes(16).toString('base64url'), htm: method, htu: url, iat: nowSeconds(), ath: sha256(token) });
      if (json !== undefined) headers['content-type'] = 'application/json';
      return readAnswer(await fetch(url, { method, headers, ...(json === undefined ? {} : { body: JSON.stringify(json) }) }));
    }

    it('passes the routes its scope reaches, with a proof from the key', async () => {
      const read = await call('GET', `/api/users/${user.id}/`);
      expect(read.status, read.text).toBe(200);
      expect(read.json['username']).toBe(user.username);
      expect((await call('GET', '/auth/me/')).status).toBe(200);
    });

    it("gets 403 insufficient_scope with a DPoP challenge where it lacks the route's scope, and changes nothing", async () => {
      const before = await fx.server.latchkey.storage.users.findById(user.id);
      expectDpopInsufficientScope(await call('PATCH', `/api/users/${user.id}/`, { json: { first_name: 'Mallory' } }), 'users:write', 'PATCH own record with users:read');
      expectDpopInsufficientScope(await call('POST', '/api/me/two-factor/enroll/', { json: { password: PASSWORD } }), 'account', 'enroll with users:read');
      expectDpopInsufficientScope(await call('GET', '/api/clients/'), 'admin', 'list clients with users:read');
      expect(await fx.server.latchkey.storage.users.findById(user.id)).toEqual(before);
      expect(await fx.server.latchkey.services.twoFactor.status(user)).toMatchObject({ enabled: false, pending: false });

      // Unproven, the same request is 401: the proof is checked before the scope.
      expectDpopRefusal(await call('PATCH', `/api/users/${user.id}/`, { json: { first_name: 'Mallory' }, proof: null }), 'invalid_dpop_proof', 'PATCH without a proof');
      const asBearer = await readAnswer(
        await fetch(`${fx.server.url}/api/users/${user.id}/`, {
          method: 'PATCH',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ first_name: 'Mallory' }),
        }),
      );
      expectDpopRefusal(asBearer, 'invalid_token', 'PATCH as a Bearer token');
      expect(await fx.server.latchkey.storage.users.findById(user.id)).toEqual(before);
    });

    it('a DPoP-bound sign-in (userinfo) token gets the same 403 in the DPoP scheme, outside GET /auth/me/', async () => {
      const signIn = await newKey();
      const userinfoToken = (await codeFlow(config, { DPoP: oidc.getDPoPHandle(config, signIn) })).access_token;
      const proof = async (method: string, url: string) =>
        signProof(signIn, { jti: randomBytes(16).toString('base64url'), htm: method, htu: url, iat: nowSeconds(), ath: sha256(userinfoToken) });
      const usersUrl = `${fx.server.url}/api/users/`;
      const listed = await readAnswer(await fetch(usersUrl, { headers: { authorization: `DPoP ${userinfoToken}`, dpop: await proof('GET', usersUrl) } }));
      expectDpopInsufficientScope(listed, 'users:read', 'list users with a userinfo token');
      expect((await me(userinfoToken, { proof: await proof('GET', meUrl()) })).status).toBe(200);
    });
  });

  describe('refresh tokens of a public client', () => {
    it('are bound to the key: another key or no proof cannot refresh, the key can', async () => {
      const key = await newKey();
      const DPoP = oidc.getDPoPHandle(publicConfig, key);
      const tokens = await codeFlow(publicConfig, { DPoP });
      expect(tokens.token_type.toLowerCase()).toBe('dpop');
      const refreshToken = tokens.refresh_token!;
      expect(refreshToken).toMatch(OPAQUE_TOKEN);

      await expect(
        oidc.refreshTokenGrant(publicConfig, refreshToken, undefined, { DPoP: oidc.getDPoPHandle(publicConfig, await newKey()) }),
      ).rejects.toMatchObject({ error: 'invalid_grant' });
      await expect(oidc.refreshTokenGrant(publicConfig, refreshToken)).rejects.toMatchObject({ error: 'invalid_grant' });

      // The refused attempts did not use the token up: its holder still refreshes, bound again.
      const refreshed = await oidc.refreshTokenGrant(publicConfig, refreshToken, undefined, { DPoP });
      expect(refreshed.token_type.toLowerCase()).toBe('dpop');
      const ok = await oidc.fetchProtectedResource(publicConfig, refreshed.access_token, new URL(meUrl()), 'GET', null, undefined, { DPoP });
      expect(ok.status).toBe(200);
      expectDpopRefusal(await me(refreshed.access_token, { scheme: 'Bearer' }), 'invalid_token', 'refreshed token as Bearer');
      await expect(oidc.refreshTokenGrant(publicConfig, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    });
  });

  describe('our REST API (/auth/me/) with a DPoP-bound token', () => {
    let key: Key;
    let token: string;
    beforeAll(async () => {
      key = await newKey();
      token = (await codeFlow(config, { DPoP: oidc.getDPoPHandle(config, key) })).access_token;
    });

    it('accepts the token with a proof from openid-client', async () => {
      const response = await oidc.fetchProtectedResource(config, token, new URL(meUrl()), 'GET', null, undefined, {
        DPoP: oidc.getDPoPHandle(config, key),
      });
      expect(response.status).toBe(200);
      expect(((await response.json()) as { username: string }).username).toBe(user.username);
    });

    it('accepts a hand-made proof (the control for every refusal below)', async () => {
      const answer = await me(token, { proof: await signProof(key, claimsFor(token)) });
      expect(answer.status, answer.text).toBe(200);
      expect(answer.json['username']).toBe(user.username);
      // A query on htu is ignored (RFC 9449 §4.3), and an iat within the window is fine.
      expect((await me(token, { proof: await signProof(key, claimsFor(token, { htu: `${meUrl()}?a=1#b`, iat: nowSeconds() - 30 })) })).status).toBe(200);
    });

    it('refuses the token without a proof, or as a Bearer token', async () => {
      expectDpopRefusal(await me(token), 'invalid_dpop_proof', 'DPoP scheme, no proof');
      expectDpopRefusal(await me(token, { scheme: 'Bearer' }), 'invalid_token', 'Bearer scheme');
      expectDpopRefusal(await me(token, { scheme: 'Bearer', proof: await signProof(key, claimsFor(token)) }), 'invalid_token', 'Bearer scheme with a proof');
      const challenge = await challengeOf(oidc.fetchProtectedResource(config, token, new URL(meUrl()), 'GET', null));
      expect(challenge).toMatchObject({ scheme: 'dpop', parameters: { error: 'invalid_token' } });
    });

    it('refuses a proof from another key', async () => {
      const other = await newKey();
      expectDpopRefusal(await me(token, { proof: await signProof(other, claimsFor(token)) }), 'invalid_token', 'other key');
      const challenge = await challengeOf(
        oidc.fetchProtectedResource(config, token, new URL(meUrl()), 'GET', null, undefined, { DPoP: oidc.getDPoPHandle(config, other) }),
      );
      expect(challenge).toMatchObject({ scheme: 'dpop', parameters: { error: 'invalid_token' } });
    });

    it('refuses a replayed proof (the same jti twice), also when both arrive at once', async () => {
      const proof = await signProof(key, claimsFor(token));
      expect((await me(token, { proof })).status).toBe(200);
      expectDpopRefusal(await me(token, { proof }), 'invalid_dpop_proof', 'replay');
      // Another proof re-using the jti is a replay too.
      const first = claimsFor(token);
      expect((await me(token, { proof: await signProof(key, first) })).status).toBe(200);
      expectDpopRefusal(await me(token, { proof: await signProof(key, { ...first, iat: first.iat + 1 }) }), 'invalid_dpop_proof', 'same jti');

      const fresh = await signProof(key, claimsFor(token));
      const parallel = await Promise.all(Array.from({ length: 4 }, () => me(token, { proof: fresh })));
      expect(parallel.map((a) => a.status).sort()).toEqual([200, 401, 401, 401]);
    });

    it('records each proof jti in oidc_payloads until its iat window has passed, and the sweeper removes it', async () => {
      const claims = claimsFor(token);
      expect((await me(token, { proof: await signProof(key, claims) })).status).toBe(200);
      const row = (await fx.server.latchkey.storage.knex('oidc_payloads').where({ model: API_DPOP_PROOF_MODEL, id: sha256(`${key.jkt}${claims.jti}`) }).first()) as
        | { expires_at: number | string }
        | undefined;
      expect(row).toBeDefined();
      const expiresAt = Number(row!.expires_at);
      expect(expiresAt).toBeGreaterThanOrEqual((claims.iat + 60) * 1000);
      expect(expiresAt).toBeLessThanOrEqual((claims.iat + 62) * 1000);
      const stored = () => fx.server.latchkey.storage.knex('oidc_payloads').where({ model: API_DPOP_PROOF_MODEL, id: sha256(`${key.jkt}${claims.jti}`) }).first();
      await sweepExpired(fx.server.latchkey.storage.knex, expiresAt - 1);
      expect(await stored()).toBeDefined();
      await sweepExpired(fx.server.latchkey.storage.knex, expiresAt);
      expect(await stored()).toBeUndefined();
    });

    it('refuses a wrong htm, htu or ath', async () => {
      const refuse = async (overrides: Record<string, unknown>, label: string) =>
        expectDpopRefusal(await me(token, { proof: await signProof(key, claimsFor(token, overrides)) }), 'invalid_dpop_proof', label);
      await refuse({ htm: 'POST' }, 'htm POST');
      await refuse({ htm: 'get' }, 'htm lower-case');
      await refuse({ htu: `${fx.server.url}/auth/me/other` }, 'htu other path');
      await refuse({ htu: `${fx.server.url}/api/users/` }, 'htu other route');
      await refuse({ htu: meUrl().replace('localhost', '127.0.0.1') }, 'htu other host');
      await refuse({ htu: meUrl().replace('http:', 'https:') }, 'htu other scheme');
      await refuse({ htu: 'not a url' }, 'htu not a URL');
      await refuse({ htu: undefined }, 'htu missing');
      await refuse({ ath: sha256(`${token}x`) }, 'ath of another token');
      await refuse({ ath: undefined }, 'ath missing');
    });

    it('refuses a stale or future iat, and a missing jti or iat', async () => {
      const refuse = async (overrides: Record<string, unknown>, label: string) =>
        expectDpopRefusal(await me(token, { proof: await signProof(key, claimsFor(token, overrides)) }), 'invalid_dpop_proof', label);
      await refuse({ iat: nowSeconds() - 120 }, 'iat two minutes old');
      await refuse({ iat: nowSeconds() + 120 }, 'iat two minutes ahead');
      await refuse({ iat: String(nowSeconds()) }, 'iat a string');
      await refuse({ iat: undefined }, 'iat missing');
      await refuse({ jti: undefined }, 'jti missing');
      await refuse({ jti: '' }, 'jti empty');
    });

    it('refuses alg none, HS256, a wrong typ, a private jwk and a missing jwk', async () => {
      const claims = () => claimsFor(token);
      const unsigned = `${b64json({ alg: 'none', typ: 'dpop+jwt', jwk: key.jwk })}.${b64json(claims())}.`;
      expectDpopRefusal(await me(token, { proof: unsigned }), 'invalid_dpop_proof', 'alg none');

      const hmacKey = new TextEncoder().encode('a shared secret that is 32 bytes');
      const hs256 = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: key.jwk }).sign(hmacKey);
      expectDpopRefusal(await me(token, { proof: hs256 }), 'invalid_dpop_proof', 'HS256');

      expectDpopRefusal(await me(token, { proof: await signProof(key, claims(), { typ: 'JWT' }) }), 'invalid_dpop_proof', 'typ JWT');
      const privateJwk = await exportJWK(key.privateKey);
      expect(privateJwk.d).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const withPrivate = await me(token, { proof: await signProof(key, claims(), { jwk: privateJwk }) });
      expectDpopRefusal(withPrivate, 'invalid_dpop_proof', 'private jwk');
      expect(withPrivate.json['error_description']).toMatch(/private/);
      expectDpopRefusal(await me(token, { proof: await signProof(key, claims(), { jwk: undefined }) }), 'invalid_dpop_proof', 'no jwk');
      // Signed by one key while the header names the bound one: the signature does not verify.
      const other = await newKey();
      expectDpopRefusal(await me(token, { proof: await signProof({ ...other, jwk: key.jwk }, claims()) }), 'invalid_dpop_proof', 'jwk of another signer');
      // Two DPoP headers (joined by the server) are not one proof.
      const two = await fetch(meUrl(), {
        headers: [
          ['authorization', `DPoP ${token}`],
          ['dpop', await signProof(key, claims())],
          ['dpop', await signProof(key, claims())],
        ],
      });
      expectDpopRefusal(await readAnswer(two), 'invalid_dpop_proof', 'two DPoP headers');
    });

    it('refuses the DPoP scheme with an unbound token', async () => {
      const bearer = (await codeFlow(config)).access_token;
      expect((await me(bearer, { scheme: 'Bearer' })).status).toBe(200);
      expectDpopRefusal(await me(bearer, { proof: await signProof(key, claimsFor(bearer)) }), 'invalid_token', 'DPoP scheme, bearer token');

      const api = await readAnswer(
        await fetch(`${fx.server.url}/api/token/`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: user.username, password: PASSWORD }),
        }),
      );
      const jwt = api.json['access'] as string;
      expectDpopRefusal(await me(jwt, { proof: await signProof(key, claimsFor(jwt)) }), 'invalid_token', 'DPoP scheme, API JWT');
    });

    it('offers both schemes when no credentials are sent', async () => {
      const answer = await readAnswer(await fetch(meUrl()));
      expect(answer.status).toBe(401);
      expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token", error_description="[^"]+", DPoP algs="ES256 Ed25519 EdDSA"$/);
    });
  });

  describe('client_credentials with DPoP', () => {
    it('issues a bound token for our API that it accepts only with a proof from the key', async () => {
      const key = await newKey();
      const DPoP = oidc.getDPoPHandle(config, key);
      const tokens = await oidc.clientCredentialsGrant(config, { scope: 'users:read', resource: apiResourceOf(fx.server.latchkey) }, { DPoP });
      expect(tokens.token_type.toLowerCase()).toBe('dpop');
      expect(decodeJwt(tokens.access_token)).toMatchObject({ aud: apiResourceOf(fx.server.latchkey), scope: 'users:read', cnf: { jkt: key.jkt } });

      // Authenticated, with the route's scope, as the client alone (no user, hence 403), not 401.
      const ok = await oidc.fetchProtectedResource(config, tokens.access_token, new URL(meUrl()), 'GET', null, undefined, { DPoP });
      expect(ok.status).toBe(403);
      expect(((await ok.json()) as { error: string }).error).toBe('permission_denied');

      expectDpopRefusal(await me(tokens.access_token, { scheme: 'Bearer' }), 'invalid_token', 'client token as Bearer');
      expectDpopRefusal(await me(tokens.access_token), 'invalid_dpop_proof', 'client token without proof');
      expectDpopRefusal(await me(tokens.access_token, { proof: await signProof(await newKey(), claimsFor(tokens.access_token)) }), 'invalid_token', 'client token, other key');
    });

    it('issues a bound token for no resource that our API checks like any other, then refuses for its scope', async () => {
      const key = await newKey();
      const DPoP = oidc.getDPoPHandle(config, key);
      const tokens = await oidc.clientCredentialsGrant(config, { scope: '' }, { DPoP });
      expect(tokens.token_type.toLowerCase()).toBe('dpop');
      expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject({ active: true, cnf: { jkt: key.jkt } });

      // The proof is checked first: without a good one it is 401, whatever the route needs.
      expectDpopRefusal(await me(tokens.access_token, { scheme: 'Bearer' }), 'invalid_token', 'client token as Bearer');
      expectDpopRefusal(await me(tokens.access_token), 'invalid_dpop_proof', 'client token without proof');
      expectDpopRefusal(await me(tokens.access_token, { proof: await signProof(await newKey(), claimsFor(tokens.access_token)) }), 'invalid_token', 'client token, other key');
      // Proven, it is a token for no API: 403 insufficient_scope, in the DPoP scheme.
      expectDpopInsufficientScope(await me(tokens.access_token, { proof: await signProof(key, claimsFor(tokens.access_token)) }), 'users:read', 'client token for no resource');
    });
  });

  describe('every algorithm discovery advertises for DPoP proofs', () => {
    it.each([
      ['ES256', 'ES256'],
      ['Ed25519', 'Ed25519'],
      ['EdDSA', 'EdDSA'],
    ] as const)('binds a token at /o/token and passes our REST API with %s proofs', async (alg, keyAlg) => {
      const pair = await generateKeyPair(keyAlg, { extractable: true });
      const jwk = await exportJWK(pair.publicKey);
      const proof = (claims: Record<string, unknown>) =>
        new SignJWT({ jti: randomBytes(16).toString('base64url'), iat: nowSeconds(), ...claims } as JWTPayload)
          .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk })
          .sign(pair.privateKey);
      const made = await makeClient(fx.server.latchkey, { name: `DPoP ${alg}`, grantTypes: ['client_credentials'], redirectUris: [], apiScopes: ['users:read'] });
      const tokenEndpoint = `${fx.server.issuer}/token`;
      const issued = await readAnswer(
        await fetch(tokenEndpoint, {
          method: 'POST',
          headers: {
            authorization: `Basic ${Buffer.from(`${made.client.clientId}:${made.clientSecret}`).toString('base64')}`,
            'content-type': 'application/x-www-form-urlencoded',
            dpop: await proof({ htm: 'POST', htu: tokenEndpoint }),
          },
          body: new URLSearchParams({ grant_type: 'client_credentials', resource: apiResourceOf(fx.server.latchkey), scope: 'users:read' }).toString(),
        }),
      );
      expect(issued.status, issued.text).toBe(200);
      expect(issued.json['token_type']).toBe('DPoP');
      const token = String(issued.json['access_token']);
      const answer = await me(token, { proof: await proof({ htm: 'GET', htu: meUrl(), ath: sha256(token) }) });
      // Authenticated as the client (which acts for no user): 403, not 401.
      expect(answer.status, answer.text).toBe(403);
      expect(answer.json['error']).toBe('permission_denied');
      expectDpopRefusal(await me(token, { proof: await signProof(await newKey(), claimsFor(token)) }), 'invalid_token', `${alg}: other key`);
    });
  });

  describe('clients registered with dpop_bound_access_tokens', () => {
    it('get no token without a proof (client_credentials and code flow)', async () => {
      const made = await makeClient(fx.server.latchkey, {
        name: 'Bound App',
        grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
        dpopBoundAccessTokens: true,
      });
      const bound = await discover(fx.server.issuer, made.client.clientId, made.clientSecret);
      await expect(oidc.clientCredentialsGrant(bound, { scope: '' })).rejects.toMatchObject({ error: 'invalid_grant' });
      const DPoP = oidc.getDPoPHandle(bound, await newKey());
      expect((await oidc.clientCredentialsGrant(bound, { scope: '' }, { DPoP })).token_type.toLowerCase()).toBe('dpop');

      await expect(codeFlow(bound)).rejects.toMatchObject({ error: 'invalid_grant' });
      expect((await codeFlow(bound, { DPoP })).token_type.toLowerCase()).toBe('dpop');
    });

    it('is a field of the clients REST API', async () => {
      const staff = await makeUser(fx.server.latchkey, { isStaff: true });
      const login = await readAnswer(
        await fetch(`${fx.server.url}/api/token/`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: staff.username, password: PASSWORD }),
        }),
      );
      const api = async (method: string, url: string, json?: unknown) =>
        readAnswer(
          await fetch(`${fx.server.url}${url}`, {
            method,
            headers: { authorization: `Bearer ${String(login.json['access'])}`, 'content-type': 'application/json' },
            ...(json === undefined ? {} : { body: JSON.stringify(json) }),
          }),
        );
      const created = await api('POST', '/api/clients/', { client_name: 'REST bound', grant_types: ['client_credentials'], dpop_bound_access_tokens: true });
      expect(created.status, created.text).toBe(201);
      expect(created.json['dpop_bound_access_tokens']).toBe(true);
      const id = String(created.json['client_id']);
      const bound = await discover(fx.server.issuer, id, String(created.json['client_secret']));
      await expect(oidc.clientCredentialsGrant(bound, { scope: '' })).rejects.toMatchObject({ error: 'invalid_grant' });

      const off = await api('PATCH', `/api/clients/${id}/`, { dpop_bound_access_tokens: false });
      expect(off.status, off.text).toBe(200);
      expect(off.json['dpop_bound_access_tokens']).toBe(false);
      expect((await oidc.clientCredentialsGrant(bound, { scope: '' })).token_type.toLowerCase()).toBe('bearer');
      expect((await api('GET', `/api/clients/${id}/`)).json['dpop_bound_access_tokens']).toBe(false);

      const bad = await api('PATCH', `/api/clients/${id}/`, { dpop_bound_access_tokens: 'yes' });
      expect(bad.status).toBe(400);
      expect(Object.keys(bad.json['fields'] as object)).toEqual(['dpop_bound_access_tokens']);
    });

    it('is a checkbox on the admin application form', async () => {
      const staff = await makeUser(fx.server.latchkey, { isStaff: true });
      const agent = new UserAgent();
      const signedIn = await adminLogin(fx.server.url, agent, staff.username, PASSWORD);
      expect(signedIn.response.status).toBe(200);
      const post = async (pagePath: string, fields: Record<string, string | string[]>) => {
        const page = await (await agent.fetch(`${fx.server.url}${pagePath}`)).text();
        expect(page).toContain('name="dpop_bound_access_tokens"');
        const form = formOf(page, pagePath);
        const body = new URLSearchParams();
        for (const [k, v] of Object.entries({ csrf: form.csrf, ...fields })) for (const one of [v].flat()) body.append(k, one);
        return agent.fetch(new URL(form.action, fx.server.url), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString() });
      };
      const fields = { name: 'Form bound', grant_types: ['client_credentials'], client_type: 'confidential', scope: 'openid', redirect_uris: '', post_logout_redirect_uris: '' };
      const shown = await post('/admin/applications/new', { ...fields, dpop_bound_access_tokens: 'yes' });
      expect(shown.status).toBe(200);
      const clientId = /data-testid="client-id">([^<]+)</.exec(await shown.text())?.[1];
      expect(clientId).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect((await fx.server.latchkey.storage.clients.find(clientId!))?.metadata['dpop_bound_access_tokens']).toBe(true);
      expect(await (await agent.fetch(`${fx.server.url}/admin/applications/${clientId}`)).text()).toMatch(/name="dpop_bound_access_tokens" value="yes" checked/);

      const saved = await post(`/admin/applications/${clientId}`, fields);
      expect(saved.status).toBe(303);
      expect((await fx.server.latchkey.storage.clients.find(clientId!))?.metadata['dpop_bound_access_tokens']).toBe(false);
    });
  });

  describe('several processes on one database', () => {
    let other: RunningLatchkey;
    beforeAll(async () => {
      // A second Latchkey on the same database and public URL (behind a proxy, so the
      // provider sees that URL too), as a load balancer would put it next to the first.
      other = await startOnDatabase(fx.server.db, { PUBLIC_URL: fx.server.url, TRUST_PROXY: '1' });
    });
    afterAll(async () => other?.close(1000));

    it('refuses at one process a proof already used at the other (REST API and userinfo)', async () => {
      const key = await newKey();
      const token = (await codeFlow(config, { DPoP: oidc.getDPoPHandle(config, key) })).access_token;
      const atOther = (url: string, proof: string) =>
        fetch(url.replace(fx.server.url, `http://127.0.0.1:${other.port}`), {
          headers: { authorization: `DPoP ${token}`, dpop: proof, 'x-forwarded-host': new URL(fx.server.url).host, 'x-forwarded-proto': 'http' },
        });

      const apiProof = await signProof(key, claimsFor(token));
      expect((await me(token, { proof: apiProof })).status).toBe(200);
      expect((await atOther(meUrl(), apiProof)).status).toBe(401);
      expect((await atOther(meUrl(), await signProof(key, claimsFor(token)))).status).toBe(200);

      const userinfo = `${fx.server.issuer}/me`;
      const infoProof = await signProof(key, { ...claimsFor(token), htu: userinfo });
      expect((await fetch(userinfo, { headers: { authorization: `DPoP ${token}`, dpop: infoProof } })).status).toBe(200);
      expect((await atOther(userinfo, infoProof)).status).toBe(401);
      expect((await atOther(userinfo, await signProof(key, { ...claimsFor(token), htu: userinfo }))).status).toBe(200);
    });
  });
});

describe('DPoP behind a TLS-terminating proxy (PUBLIC_URL https, TRUST_PROXY=1)', () => {
  let server: TestServer;
  const PUBLIC = 'https://id.example.test';
  beforeAll(async () => {
    server = await startTestServer('sqlite', { PUBLIC_URL: PUBLIC, TRUST_PROXY: '1' });
  });
  afterAll(async () => server?.stop());

  it('checks htu against PUBLIC_URL, not the address the request reached', async () => {
    const made = await makeClient(server.latchkey, { grantTypes: ['client_credentials'], redirectUris: [], postLogoutRedirectUris: [], apiScopes: ['users:read'] });
    const key = await newKey();
    const viaProxy = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'id.example.test' };
    const local = (p: string) => `http://127.0.0.1:${server.port}${p}`;
    const claims = (htu: string, more: Record<string, unknown> = {}) => ({ jti: randomBytes(16).toString('base64url'), htm: 'GET', htu, iat: nowSeconds(), ...more });

    const tokenResponse = await readAnswer(
      await fetch(local('/o/token'), {
        method: 'POST',
        headers: {
          ...viaProxy,
          authorization: `Basic ${Buffer.from(`${made.client.clientId}:${made.clientSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
          dpop: await signProof(key, claims(`${PUBLIC}/o/token`, { htm: 'POST' })),
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${PUBLIC}/api`, scope: 'users:read' }).toString(),
      }),
    );
    expect(tokenResponse.status, tokenResponse.text).toBe(200);
    expect(tokenResponse.json['token_type']).toBe('DPoP');
    const token = String(tokenResponse.json['access_token']);

    const call = async (htu: string) =>
      readAnswer(
        await fetch(local('/auth/me/'), {
          headers: { ...viaProxy, authorization: `DPoP ${token}`, dpop: await signProof(key, claims(htu, { ath: sha256(token) })) },
        }),
      );
    // 403: authenticated, with the route's scope, but a client token acts for no user.
    const proven = await call(`${PUBLIC}/auth/me/`);
    expect(proven.status, proven.text).toBe(403);
    expect(proven.json['error']).toBe('permission_denied');
    expectDpopRefusal(await call(local('/auth/me/')), 'invalid_dpop_proof', 'htu of the local address');
  });
});

describe.each(BACKENDS)('CLI `client create --dpop-bound` (%s)', (backend) => {
  let db: TestDatabase;
  let running: RunningLatchkey | undefined;
  beforeAll(async () => {
    db = await freshDatabase(backend);
  });
  afterAll(async () => {
    await running?.close(1000);
    await db?.drop();
  });

  const cli = (...args: string[]): Promise<ProcessResult> =>
    runProcess(process.execPath, [CLI, ...args], { env: { ...process.env, DATABASE_URL: db.url, BCRYPT_COST: '10' }, cwd: ROOT });

  it('registers a client that gets tokens only with a DPoP proof', async () => {
    const bound = await cli('client', 'create', '--name', 'CLI bound', '--grant-type', 'client_credentials', '--dpop-bound', '--json');
    expect(bound.code, bound.stderr).toBe(0);
    expect(bound.stderr).toBe('');
    const created = JSON.parse(bound.stdout) as { client_id: string; client_secret: string };
    const plain = await cli('client', 'create', '--name', 'CLI plain', '--grant-type', 'client_credentials', '--json');
    expect(plain.code, plain.stderr).toBe(0);
    const plainId = (JSON.parse(plain.stdout) as { client_id: string }).client_id;

    const list = await cli('client', 'list', '--json');
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout) as Array<{ client_id: string; dpop_bound_access_tokens?: boolean }>;
    expect(listed.find((c) => c.client_id === created.client_id)?.dpop_bound_access_tokens).toBe(true);
    expect(listed.find((c) => c.client_id === plainId)?.dpop_bound_access_tokens).toBe(false);

    const bad = await cli('client', 'create', '--name', 'x', '--dpop-bound=yes');
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(/^error: [^\n]+\n$/);

    running = await startOnDatabase(db);
    const config = await discover(running.issuer, created.client_id, created.client_secret);
    await expect(oidc.clientCredentialsGrant(config, { scope: '' })).rejects.toMatchObject({ error: 'invalid_grant' });
    const tokens = await oidc.clientCredentialsGrant(config, { scope: '' }, { DPoP: oidc.getDPoPHandle(config, await newKey()) });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
  });

  it('documents the flag in the usage text', async () => {
    const help = await cli('help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--dpop-bound');
  });
});
