import { randomBytes } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, generateKeyPair, importJWK, jwtVerify, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import { beforeAll, describe, expect, it } from 'vitest';
import type { User } from '../../src/storage/users.js';
import { formOf, UserAgent } from '../helpers/browserless.js';
import { readAnswer, type Answer } from '../helpers/http.js';
import { authorizationRequest, authorize, discover, loginAndExchange, makeClient, makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { OPAQUE_TOKEN } from '../helpers/shapes.js';

/**
 * RFC 8707 resource indicators with RFC 9068 JWT access tokens, through openid-client against
 * a real server: tokens for a registered API resource are JWTs with `aud` = the resource,
 * verifiable offline at /o/jwks; unknown resources are refused; the resource's scopes bound
 * what a token carries; and our own REST API takes provider JWTs for `${PUBLIC_URL}/api`
 * (and nothing issued for another resource).
 */

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describeOnBackends('resource indicators and JWT access tokens (%s)', (fx) => {
  /** authorization_code + refresh_token + client_credentials, confidential. */
  let config: oidc.Configuration;
  let clientId: string;
  let jwks: ReturnType<typeof createRemoteJWKSet>;
  let user: User;
  /** `${PUBLIC_URL}/api`: the built-in resource. */
  let apiResource: string;
  /** A registered JWT resource offering read and write, 600 s tokens. */
  const ORDERS = 'https://orders.example.com/api';
  /** A registered opaque resource. */
  const LEDGER = 'https://ledger.example.com/';

  const call = (path: string, token: string): Promise<Answer> => fx.bearer('GET', path, token);

  function expectInvalidToken(answer: Answer, label: string): void {
    expect(answer.status, `${label}: ${answer.text}`).toBe(401);
    expect(answer.json['error'], label).toBe('invalid_token');
    expect(answer.headers.get('www-authenticate') ?? '', label).toMatch(/^Bearer error="invalid_token"/);
  }

  /** The server's current RS256 private key, to forge tokens that differ from genuine ones in one respect only. */
  async function serverKey(): Promise<{ key: CryptoKey; kid: string }> {
    const jwk = fx.server.latchkey.host.keys.jwks.keys.find((k) => k.alg === 'RS256' && !k.key_ops);
    if (!jwk?.kid || !jwk.d) throw new Error('no current RS256 private key');
    return { key: (await importJWK(jwk, 'RS256')) as CryptoKey, kid: jwk.kid };
  }

  /** Claims shaped like the provider's user token for our API, valid for a minute. */
  function userClaims(sub: string, extra: JWTPayload = {}): JWTPayload {
    const now = Math.floor(Date.now() / 1000);
    return { iss: fx.server.issuer, aud: apiResource, sub, client_id: clientId, scope: 'users:read', jti: randomBytes(16).toString('base64url'), iat: now, exp: now + 60, ...extra };
  }

  async function forge(claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
    const { key, kid } = await serverKey();
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid, ...header }).sign(key);
  }

  beforeAll(async () => {
    apiResource = `${fx.server.url}/api`;
    const made = await makeClient(fx.server.latchkey, { grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'], apiScopes: ['users:read'] });
    clientId = made.client.clientId;
    config = await discover(fx.server.issuer, clientId, made.clientSecret ?? '');
    jwks = createRemoteJWKSet(new URL(`${fx.server.issuer}/jwks`));
    user = await makeUser(fx.server.latchkey);
    await fx.server.latchkey.services.resourceService.create({ identifier: ORDERS, name: 'Orders API', scopes: ['read', 'write'], accessTokenTtl: 600 });
    await fx.server.latchkey.services.resourceService.create({ identifier: LEDGER, scopes: ['ledger:read'], accessTokenFormat: 'opaque', accessTokenTtl: 120 });
  });

  describe('client_credentials', () => {
    it('issues an RFC 9068 JWT for the resource, verifiable offline against /o/jwks', async () => {
      const tokens = await oidc.clientCredentialsGrant(config, { resource: ORDERS, scope: 'read write' });
      expect(tokens.access_token).toMatch(JWT);
      expect(tokens.expires_in).toBe(600);
      expect(String(tokens.scope).split(' ').sort()).toEqual(['read', 'write']);

      const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, { issuer: fx.server.issuer, audience: ORDERS, typ: 'at+jwt' });
      expect(protectedHeader.alg).toBe('RS256');
      expect(protectedHeader.typ).toBe('at+jwt');
      expect(protectedHeader.kid).toEqual(expect.any(String));
      expect(payload.aud).toBe(ORDERS);
      expect(payload.iss).toBe(fx.server.issuer);
      // RFC 9068 2.2: no resource owner, so sub is the client.
      expect(payload.sub).toBe(clientId);
      expect(payload['client_id']).toBe(clientId);
      expect(String(payload['scope']).split(' ').sort()).toEqual(['read', 'write']);
      expect(payload.exp! - payload.iat!).toBe(600);
      expect(payload.jti).toEqual(expect.any(String));
    });

    it('never grants a scope the resource does not offer', async () => {
      const tokens = await oidc.clientCredentialsGrant(config, { resource: ORDERS, scope: 'read delete admin' });
      expect(tokens.scope).toBe('read');
      expect(decodeJwt(tokens.access_token)['scope']).toBe('read');
      // Nothing asked that the resource offers: a token with no scope at all (the answer's
      // `scope` is empty, as django-oauth-toolkit's client_credentials answers always carry one).
      const none = await oidc.clientCredentialsGrant(config, { resource: ORDERS, scope: 'admin' });
      expect(none.scope).toBe('');
      expect(decodeJwt(none.access_token)['scope']).toBeUndefined();
    });

    it('refuses an unknown or malformed resource with invalid_target', async () => {
      for (const resource of ['https://unknown.example.com/', `${ORDERS}/`, 'https://orders.example.com/api#x', 'not a uri']) {
        await expect(oidc.clientCredentialsGrant(config, { resource, scope: 'read' }), resource).rejects.toMatchObject({ error: 'invalid_target' });
      }
    });

    it('refuses two resources in one client_credentials request', async () => {
      const params = new URLSearchParams([['resource', ORDERS], ['resource', apiResource], ['scope', 'read']]);
      await expect(oidc.clientCredentialsGrant(config, params)).rejects.toMatchObject({ error: 'invalid_target' });
    });

    it('without a resource still issues the opaque token it always did', async () => {
      const tokens = await oidc.clientCredentialsGrant(config, {});
      expect(tokens.access_token).not.toMatch(JWT);
      const introspection = await oidc.tokenIntrospection(config, tokens.access_token);
      expect(introspection.active).toBe(true);
      expect(introspection.aud).toBeUndefined();
    });

    it('issues opaque tokens for an opaque resource; introspection shows the audience and lifetime', async () => {
      const tokens = await oidc.clientCredentialsGrant(config, { resource: LEDGER, scope: 'ledger:read read' });
      expect(tokens.access_token).not.toMatch(JWT);
      expect(tokens.expires_in).toBe(120);
      expect(tokens.scope).toBe('ledger:read');
      const introspection = await oidc.tokenIntrospection(config, tokens.access_token);
      expect(introspection).toMatchObject({ active: true, client_id: clientId, aud: LEDGER, scope: 'ledger:read' });
      expect(introspection.exp! - introspection.iat!).toBe(120);
    });

    it('limits only OpenID scopes by the client\'s registered scope, never a resource\'s', async () => {
      const narrow = await makeClient(fx.server.latchkey, { name: 'Narrow', redirectUris: [], postLogoutRedirectUris: [], grantTypes: ['client_credentials'], scope: 'openid' });
      const narrowConfig = await discover(fx.server.issuer, narrow.client.clientId, narrow.clientSecret ?? '');
      const tokens = await oidc.clientCredentialsGrant(narrowConfig, { resource: ORDERS, scope: 'read' });
      expect(decodeJwt(tokens.access_token)['scope']).toBe('read');
      await expect(oidc.clientCredentialsGrant(narrowConfig, { resource: ORDERS, scope: 'read profile' })).rejects.toMatchObject({ error: 'invalid_scope' });
    });

    it('follows changes to the resource: new lifetime, scopes, and deletion', async () => {
      const identifier = `https://changing-${randomBytes(3).toString('hex')}.example.com/`;
      const created = await fx.server.latchkey.services.resourceService.create({ identifier, scopes: ['a'], accessTokenTtl: 300 });
      expect((await oidc.clientCredentialsGrant(config, { resource: identifier, scope: 'a b' })).expires_in).toBe(300);
      await fx.server.latchkey.services.resourceService.update(created.id, { scopes: ['a', 'b'], accessTokenTtl: 900 });
      const after = await oidc.clientCredentialsGrant(config, { resource: identifier, scope: 'a b' });
      expect(after.expires_in).toBe(900);
      expect(String(after.scope).split(' ').sort()).toEqual(['a', 'b']);
      await fx.server.latchkey.services.resourceService.remove(created.id);
      await expect(oidc.clientCredentialsGrant(config, { resource: identifier, scope: 'a' })).rejects.toMatchObject({ error: 'invalid_target' });
    });
  });

  describe('authorization code with PKCE', () => {
    it('shows the API and its requested scopes on the consent page, then issues a JWT for it', async () => {
      const agent = new UserAgent();
      const { url, codeVerifier, state, nonce } = await authorizationRequest(config, { scope: 'openid profile read bogus', resource: ORDERS });
      const isCallback = (u: URL) => u.href.startsWith(REDIRECT_URI);
      let { response, url: at } = await agent.follow(url, isCallback);
      const login = formOf(await response.text(), '/login');
      const posted = await agent.postForm(new URL(login.action, at), { csrf: login.csrf, username: user.username, password: PASSWORD });
      expect(posted.status).toBe(303);
      ({ response, url: at } = await agent.follow(new URL(posted.headers.get('location') ?? '', at), isCallback));
      const consent = await response.text();
      expect(consent).toContain('Use Orders API on your behalf');
      expect(consent).toContain(`<code>${ORDERS}</code>`);
      expect(consent).toContain('<code>read</code>');
      // The resource does not offer "bogus": it is neither shown nor granted.
      expect(consent).not.toContain('bogus');
      expect(consent).toContain('<code>profile</code>');

      const form = formOf(consent, '/confirm');
      const allowed = await agent.postForm(new URL(form.action, at), { csrf: form.csrf, decision: 'allow' });
      ({ url: at } = await agent.follow(new URL(allowed.headers.get('location') ?? '', at), isCallback));
      expect(isCallback(at)).toBe(true);

      const tokens = await oidc.authorizationCodeGrant(config, at, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
      expect(tokens.claims()?.sub).toBe(String(user.id));
      const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: fx.server.issuer, audience: ORDERS, typ: 'at+jwt' });
      expect(payload).toMatchObject({ sub: String(user.id), client_id: clientId, aud: ORDERS, scope: 'read' });
      expect(payload.exp! - payload.iat!).toBe(600);
      expect(tokens.expires_in).toBe(600);
    });

    it('keeps the resource on refresh', async () => {
      const other = await makeUser(fx.server.latchkey);
      const { tokens } = await loginAndExchange(config, new UserAgent(), { username: other.username, password: PASSWORD }, { scope: 'openid read write', resource: ORDERS });
      expect(tokens.refresh_token).toMatch(OPAQUE_TOKEN);
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      expect(refreshed.access_token).toMatch(JWT);
      const { payload } = await jwtVerify(refreshed.access_token, jwks, { issuer: fx.server.issuer, audience: ORDERS, typ: 'at+jwt' });
      expect(payload.sub).toBe(String(other.id));
      expect(String(payload['scope']).split(' ').sort()).toEqual(['read', 'write']);
      // Asking for less on refresh narrows the new token, never widens it.
      const narrowed = await oidc.refreshTokenGrant(config, refreshed.refresh_token!, { scope: 'openid read' });
      expect(decodeJwt(narrowed.access_token)['scope']).toBe('read');
    });

    it('skips consent the second time the same scopes are asked of the same API', async () => {
      const other = await makeUser(fx.server.latchkey);
      const agent = new UserAgent();
      await loginAndExchange(config, agent, { username: other.username, password: PASSWORD }, { scope: 'openid read', resource: ORDERS });
      const again = await authorize(config, agent, null, { scope: 'openid read', resource: ORDERS }, { consent: 'skip' });
      expect(again.callbackUrl.searchParams.get('code')).toMatch(OPAQUE_TOKEN);
    });

    it('refuses an unknown resource at the authorization endpoint', async () => {
      const { url } = await authorizationRequest(config, { resource: 'https://unknown.example.com/' });
      const { url: at } = await new UserAgent().follow(url, (u) => u.href.startsWith(REDIRECT_URI));
      expect(at.href.startsWith(REDIRECT_URI)).toBe(true);
      expect(at.searchParams.get('error')).toBe('invalid_target');
    });

    it('without a resource still gives the opaque token that works at userinfo', async () => {
      const other = await makeUser(fx.server.latchkey);
      const { tokens } = await loginAndExchange(config, new UserAgent(), { username: other.username, password: PASSWORD });
      expect(tokens.access_token).not.toMatch(JWT);
      expect((await oidc.fetchUserInfo(config, tokens.access_token, String(other.id))).sub).toBe(String(other.id));
    });
  });

  describe('our REST API as a resource server', () => {
    /** A user JWT for `${PUBLIC_URL}/api` through the code flow. */
    async function apiJwtFor(person: User, scope = 'openid users:read', cfg = config): Promise<string> {
      const { tokens } = await loginAndExchange(cfg, new UserAgent(), { username: person.username, password: PASSWORD }, { scope, resource: apiResource });
      expect(tokens.access_token).toMatch(JWT);
      return tokens.access_token;
    }

    it('accepts a user JWT for its audience at /auth/me/ and /api/users/<id>/', async () => {
      const token = await apiJwtFor(user);
      const { payload } = await jwtVerify(token, jwks, { issuer: fx.server.issuer, audience: apiResource, typ: 'at+jwt' });
      expect(payload).toMatchObject({ sub: String(user.id), scope: 'users:read' });
      expect(payload.exp! - payload.iat!).toBe(fx.server.latchkey.services.resourceService.builtIn.accessTokenTtl);
      const me = await call('/auth/me/', token);
      expect(me.status, me.text).toBe(200);
      expect(me.json['id']).toBe(user.id);
      const self = await call(`/api/users/${user.id}/`, token);
      expect(self.status, self.text).toBe(200);
      expect(self.json['username']).toBe(user.username);
    });

    it('refuses a JWT issued for another resource (401)', async () => {
      const { tokens } = await loginAndExchange(config, new UserAgent(), { username: user.username, password: PASSWORD }, { scope: 'openid read', resource: ORDERS });
      expectInvalidToken(await call('/auth/me/', tokens.access_token), 'user JWT for another API');
      const machine = await oidc.clientCredentialsGrant(config, { resource: ORDERS, scope: 'read' });
      expectInvalidToken(await call('/auth/me/', machine.access_token), 'client JWT for another API');
    });

    it('refuses an opaque token issued for another resource (401)', async () => {
      const tokens = await oidc.clientCredentialsGrant(config, { resource: LEDGER, scope: 'ledger:read' });
      expectInvalidToken(await call('/auth/me/', tokens.access_token), 'opaque token for another API');
    });

    it('treats a client_credentials JWT as the client alone: 403 on user routes, never a user', async () => {
      const tokens = await oidc.clientCredentialsGrant(config, { resource: apiResource, scope: 'users:read' });
      expect(decodeJwt(tokens.access_token)).toMatchObject({ sub: clientId, client_id: clientId, aud: apiResource, scope: 'users:read' });
      for (const path of ['/auth/me/', `/api/users/${user.id}/`, '/api/users/']) {
        const answer = await call(path, tokens.access_token);
        expect(answer.status, `${path}: ${answer.text}`).toBe(403);
        expect(answer.json['error']).toBe('permission_denied');
      }
    });

    it('needs the route\'s API scope (403 insufficient_scope with a challenge)', async () => {
      const token = await apiJwtFor(user, 'openid');
      expect(decodeJwt(token)['scope']).toBeUndefined();
      const answer = await call('/auth/me/', token);
      expect(answer.status, answer.text).toBe(403);
      expect(answer.json['error']).toBe('insufficient_scope');
      expect(answer.headers.get('www-authenticate') ?? '').toMatch(/^Bearer error="insufficient_scope".*scope="users:read"/);
    });

    it('refuses tampered, expired, foreign-signed, alg=none, HMAC and sender-constrained JWTs; accepts the forged control', async () => {
      const control = await call('/auth/me/', await forge(userClaims(String(user.id))));
      expect(control.status, `the forge itself must be sound: ${control.text}`).toBe(200);

      const genuine = await apiJwtFor(user);
      const [header, body, signature] = genuine.split('.');
      const other = await makeUser(fx.server.latchkey);
      const tampered = `${header}.${b64json({ ...decodeJwt(genuine), sub: String(other.id) })}.${signature}`;
      expectInvalidToken(await call('/auth/me/', tampered), 'tampered payload');
      expectInvalidToken(await call('/auth/me/', `${header}.${body}.${'A'.repeat(signature!.length)}`), 'bad signature');

      const now = Math.floor(Date.now() / 1000);
      const expired = await call('/auth/me/', await forge(userClaims(String(user.id), { iat: now - 3600, exp: now - 60 })));
      expectInvalidToken(expired, 'expired');
      expect(expired.json['error_description']).toMatch(/expired/);

      const { privateKey } = await generateKeyPair('RS256', { extractable: true });
      const { kid } = await serverKey();
      const foreign = await new SignJWT(userClaims(String(user.id))).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid }).sign(privateKey);
      expectInvalidToken(await call('/auth/me/', foreign), 'foreign key with our kid');

      const unknownKid = await forge(userClaims(String(user.id)), { kid: 'not-a-known-kid' });
      expectInvalidToken(await call('/auth/me/', unknownKid), 'unknown kid');

      const none = `${b64json({ alg: 'none', typ: 'at+jwt', kid })}.${b64json(userClaims(String(user.id)))}.`;
      expectInvalidToken(await call('/auth/me/', none), 'alg=none');

      const publicJwk = fx.server.latchkey.host.keys.jwks.keys.find((k) => k.kid === kid) as JWK;
      const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicOnly } = publicJwk;
      const hmac = await new SignJWT(userClaims(String(user.id)))
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid })
        .sign(new TextEncoder().encode(JSON.stringify(publicOnly)));
      expectInvalidToken(await call('/auth/me/', hmac), 'HS256 keyed with the public key');

      expectInvalidToken(await call('/auth/me/', await forge(userClaims(String(user.id)), { typ: 'JWT' })), 'typ JWT');
      expectInvalidToken(await call('/auth/me/', await forge(userClaims(String(user.id), { iss: `${fx.server.url}/elsewhere` }))), 'wrong iss');
      expectInvalidToken(await call('/auth/me/', await forge(userClaims(String(user.id), { aud: 'https://orders.example.com/api' }))), 'wrong aud');
      // A DPoP-bound token (cnf.jkt) sent as a bearer token would undo its binding.
      const asBearer = await call('/auth/me/', await forge(userClaims(String(user.id), { cnf: { jkt: 'x'.repeat(43) } })));
      expect(asBearer.status, asBearer.text).toBe(401);
      expect(asBearer.headers.get('www-authenticate') ?? '').toMatch(/^DPoP error="invalid_token"/);
      // Certificate-bound (mTLS) tokens need a proof this API cannot check.
      expectInvalidToken(await call('/auth/me/', await forge(userClaims(String(user.id), { cnf: { 'x5t#S256': 'x'.repeat(43) } }))), 'cnf (mTLS-bound)');
      // A client-credentials-shaped token (sub = client_id) never becomes a user, even one whose id it names.
      const clientShaped = await call('/auth/me/', await forge(userClaims(clientId)));
      expect(clientShaped.status, clientShaped.text).toBe(403);
    });

    it('accepts a DPoP-bound user JWT for our API only with a proof from its key', async () => {
      const key = await oidc.randomDPoPKeyPair();
      const DPoP = oidc.getDPoPHandle(config, key);
      const front = await authorize(config, new UserAgent(), { username: user.username, password: PASSWORD }, { scope: 'openid users:read', resource: apiResource });
      const tokens = await oidc.authorizationCodeGrant(
        config,
        front.callbackUrl,
        { pkceCodeVerifier: front.codeVerifier, expectedState: front.state, expectedNonce: front.nonce },
        { resource: apiResource },
        { DPoP },
      );
      expect(tokens.token_type.toLowerCase()).toBe('dpop');
      expect(decodeJwt(tokens.access_token)['cnf']).toEqual({ jkt: expect.any(String) });
      const me = await oidc.fetchProtectedResource(config, tokens.access_token, new URL(`${fx.server.url}/auth/me/`), 'GET', null, undefined, { DPoP });
      expect(me.status).toBe(200);
      expect(((await me.json()) as { id: number }).id).toBe(user.id);
      // The same JWT as a bearer token, or with a proof from another key: refused.
      const bearer = await call('/auth/me/', tokens.access_token);
      expect(bearer.status).toBe(401);
      const otherKey = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair());
      const stolen = (await oidc
        .fetchProtectedResource(config, tokens.access_token, new URL(`${fx.server.url}/auth/me/`), 'GET', null, undefined, { DPoP: otherKey })
        .catch((error: unknown) => error)) as { response?: Response; cause?: Array<{ scheme: string; parameters: Record<string, string> }> };
      expect(stolen.response?.status).toBe(401);
      expect(stolen.cause?.[0]).toMatchObject({ scheme: 'dpop', parameters: { error: 'invalid_token' } });
    });

    it('keeps provider JWTs and /api/token/ JWTs apart', async () => {
      const genuine = await apiJwtFor(user);
      const verify = await readAnswer(
        await fetch(`${fx.server.url}/api/token/verify/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: genuine }) }),
      );
      expect(verify.status, `/api/token/verify/ is for its own JWTs only: ${verify.text}`).toBe(401);
      // An /api/token/-shaped token (token_type, user_id) is checked by those rules: here, no token_type match.
      const mixed = await forge(userClaims(String(user.id), { user_id: user.id }));
      expectInvalidToken(await call('/auth/me/', mixed), 'provider claims with user_id');
    });

    it('refuses the JWT once its user is deactivated or its client deleted', async () => {
      const person = await makeUser(fx.server.latchkey);
      const token = await apiJwtFor(person);
      expect((await call('/auth/me/', token)).status).toBe(200);
      await fx.server.latchkey.storage.users.update(person.id, { isActive: false });
      expectInvalidToken(await call('/auth/me/', token), 'deactivated user');

      const app = await makeClient(fx.server.latchkey, { name: 'Short-lived app', apiScopes: ['users:read'] });
      const appConfig = await discover(fx.server.issuer, app.client.clientId, app.clientSecret ?? '');
      const appToken = await apiJwtFor(user, 'openid users:read', appConfig);
      expect((await call('/auth/me/', appToken)).status).toBe(200);
      await fx.server.latchkey.services.clientService.remove(app.client.clientId);
      expectInvalidToken(await call('/auth/me/', appToken), 'deleted client');
    });

    it('answers 401, not 500, for a JWT-shaped token that does not decode', async () => {
      expectInvalidToken(await call('/auth/me/', 'aaa.bbb.ccc'), 'garbage JWT');
      expectInvalidToken(await call('/auth/me/', `${b64json({ alg: 'RS256' })}.bm90IGpzb24.sig`), 'payload not JSON');
    });
  });

  it('issues a JWT for the built-in API that a third party verifies with jose and the JWKS', async () => {
    const { keys } = (await (await fetch(`${fx.server.issuer}/jwks`)).json()) as { keys: JWK[] };
    expect(keys.every((k) => k.d === undefined)).toBe(true);
    const tokens = await oidc.clientCredentialsGrant(config, { resource: apiResource, scope: 'users:read' });
    const header = decodeProtectedHeader(tokens.access_token);
    const jwk = keys.find((k) => k.kid === header.kid);
    expect(jwk).toMatchObject({ kid: header.kid, kty: 'RSA' });
    const { payload } = await jwtVerify(tokens.access_token, await importJWK(jwk!, 'RS256'), { issuer: fx.server.issuer, audience: apiResource, typ: 'at+jwt' });
    expect(payload.sub).toBe(clientId);
  });
});
