/**
 * The REST API's JWT endpoints (/api/token/, refresh, verify), bearer auth with those JWTs,
 * the legacy /users/register/ and /users/login/ endpoints, and grant_type=password at
 * /o/token, over a real server on each backend. JWTs are checked with jose against the live
 * /o/jwks, OAuth tokens through openid-client, as a third party would.
 */
import { readAnswer, type Answer } from '../helpers/http.js';
import { createPublicKey, randomBytes } from 'node:crypto';
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  decodeJwt,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTHeaderParameters,
  type JWTPayload,
} from 'jose';
import * as oidc from 'openid-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { RETIRED_KEY_RETENTION_MS } from '../../src/core/tokens/lifetimes.js';
import type { User } from '../../src/storage/users.js';
import { serverSigningJwk as serverJwk, signWithServerKey as signServer, simplejwtAccessClaims } from '../helpers/api-jwt.js';
import { discover, makeClient, makeUser, PASSWORD } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { ACCESS_TOKEN, CLIENT_SECRET, JWT, OPAQUE_TOKEN } from '../helpers/shapes.js';

const FIRST_PARTY = 'latchkey-first-party';
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

interface Pair {
  access: string;
  refresh: string;
}

const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const nowSeconds = () => Math.floor(Date.now() / 1000);

describeOnBackends('REST API tokens, legacy endpoints and the password grant (%s)', (fx) => {
  let issuer: string;
  let audience: string;

  beforeAll(async () => {
    issuer = fx.server.issuer;
    audience = `${fx.server.url}/api`;
  });

  // ---------------------------------------------------------------- helpers

  const answer = readAnswer;

  const postJson = (path: string, body: unknown, bearer?: string): Promise<Answer> => fx.api('POST', path, { json: body, token: bearer });
  const postForm = (path: string, fields: Record<string, string>, bearer?: string): Promise<Answer> => fx.api('POST', path, { form: fields, token: bearer });
  const me = (token: string): Promise<Answer> => fx.api('GET', '/auth/me/', { token });

  const verifyAt = (token: string) => postJson('/api/token/verify/', { token });
  const refreshAt = (refresh: string) => postJson('/api/token/refresh/', { refresh });

  const obtain = (username: string, password = PASSWORD): Promise<Pair> => fx.apiLogin(username, password);

  /** The JWKS as published right now at /o/jwks (fresh each call: keys rotate in these tests). */
  async function liveJwks(): Promise<{ keys: JWK[] }> {
    const res = await fetch(`${fx.server.url}/o/jwks`);
    expect(res.status).toBe(200);
    return (await res.json()) as { keys: JWK[] };
  }

  async function verifyWithLiveJwks(token: string, typ: string) {
    return jwtVerify(token, createLocalJWKSet(await liveJwks()), { issuer, audience, typ, algorithms: ['RS256'] });
  }

  const validClaims = (user: User): JWTPayload => simplejwtAccessClaims(fx.server.latchkey, user);

  async function signWith(key: CryptoKey | Uint8Array, claims: JWTPayload, header: JWTHeaderParameters): Promise<string> {
    return new SignJWT(claims).setProtectedHeader(header).sign(key);
  }

  const signWithServerKey = (claims: JWTPayload, header: Partial<JWTHeaderParameters> = {}) => signServer(fx.server.latchkey, claims, header);

  async function expectRefusedAtMe(token: string, label: string): Promise<void> {
    const res = await me(token);
    expect(res.status, `${label}: ${res.text}`).toBe(401);
    expect(res.json['error'], label).toBe('invalid_token');
    expect(res.headers.get('www-authenticate') ?? '', label).toMatch(/^Bearer error="invalid_token"/);
  }

  async function expectRefusedAtVerify(token: string, label: string): Promise<void> {
    const res = await verifyAt(token);
    expect(res.status, `${label}: ${res.text}`).toBe(401);
    expect(res.json['error'], label).toBe('invalid_token');
    // simplejwt's keys too, for clients written against it.
    expect(res.json['code'], label).toBe('token_not_valid');
    expect(res.json['detail'], label).toEqual(expect.any(String));
  }

  // ---------------------------------------------------------------- 1. happy path

  it('issues an access/refresh pair that verifies against the live /o/jwks', async () => {
    const user = await makeUser(fx.server.latchkey);
    const res = await postJson('/api/token/', { username: user.username, password: PASSWORD });
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.json).sort()).toEqual(['access', 'refresh']);
    expect(res.headers.get('cache-control')).toContain('no-store');
    const { access, refresh } = res.json as unknown as Pair;

    const jwks = await liveJwks();
    for (const key of jwks.keys) for (const member of PRIVATE_MEMBERS) expect(key, `published ${member}`).not.toHaveProperty(member);
    const currentKid = serverJwk(fx.server.latchkey).kid;
    expect(jwks.keys.map((k) => k.kid)).toContain(currentKid);

    const a = await verifyWithLiveJwks(access, 'at+jwt');
    expect(a.protectedHeader).toMatchObject({ alg: 'RS256', typ: 'at+jwt', kid: currentKid });
    expect(a.payload).toMatchObject({ iss: issuer, aud: audience, sub: String(user.id), user_id: user.id, token_type: 'access' });
    expect(typeof a.payload.jti).toBe('string');
    expect(a.payload.exp! - a.payload.iat!).toBe(300);
    expect(Math.abs(a.payload.iat! - nowSeconds())).toBeLessThan(30);

    const r = await verifyWithLiveJwks(refresh, 'refresh+jwt');
    expect(r.protectedHeader).toMatchObject({ alg: 'RS256', typ: 'refresh+jwt', kid: currentKid });
    expect(r.payload).toMatchObject({ iss: issuer, aud: audience, sub: String(user.id), user_id: user.id, token_type: 'refresh' });
    expect(typeof r.payload.jti).toBe('string');
    expect(r.payload.jti).not.toBe(a.payload.jti);
    expect(r.payload.exp! - r.payload.iat!).toBe(86400);

    // Each JWT is only good as its own type.
    await expect(verifyWithLiveJwks(refresh, 'at+jwt')).rejects.toThrow();

    const who = await me(access);
    expect(who.status, who.text).toBe(200);
    expect(who.json).toMatchObject({ id: user.id, username: user.username });
    await expectRefusedAtMe(refresh, 'refresh JWT as bearer');

    expect((await verifyAt(access)).status).toBe(200);
    expect((await verifyAt(access)).json).toEqual({});
    await expectRefusedAtVerify(refresh, 'refresh JWT at verify');
  });

  it('refuses the token endpoints without the required field', async () => {
    expect((await postJson('/api/token/refresh/', {})).status).toBe(400);
    expect((await postJson('/api/token/verify/', {})).status).toBe(400);
    // As simplejwt answers: 400 with the field's message, for anyone (no account is looked up).
    const noPassword = await postJson('/api/token/', { username: 'someone' });
    expect(noPassword.status).toBe(400);
    expect(noPassword.json).toMatchObject({ password: ['This field is required.'], error: 'invalid_request' });
    const blank = await postJson('/api/token/', { username: '', password: 'x' });
    expect(blank.json).toMatchObject({ username: ['This field may not be blank.'] });
    expect((await postJson('/api/token/refresh/', {})).json).toMatchObject({ refresh: ['This field is required.'] });
  });

  // ---------------------------------------------------------------- 2. forged and invalid JWTs

  describe('refuses forged and invalid JWTs at /auth/me/ and /api/token/verify/', () => {
    let victim: User;
    let other: User;
    let genuine: Pair;
    let ownKey: CryptoKey;

    beforeAll(async () => {
      victim = await makeUser(fx.server.latchkey);
      other = await makeUser(fx.server.latchkey, { isStaff: true });
      genuine = await obtain(victim.username);
      ({ privateKey: ownKey } = await generateKeyPair('RS256', { extractable: true }));
    });

    async function publishedRsaKey(): Promise<JWK> {
      const kid = serverJwk(fx.server.latchkey).kid;
      const jwk = (await liveJwks()).keys.find((k) => k.kid === kid);
      if (!jwk) throw new Error('current RS256 key is not published');
      return jwk;
    }

    it('accepts a token minted in-process with the server key and correct claims (positive control)', async () => {
      const token = await signWithServerKey(validClaims(victim));
      const who = await me(token);
      expect(who.status, who.text).toBe(200);
      expect(who.json['id']).toBe(victim.id);
      expect((await verifyAt(token)).status).toBe(200);
      // and the untouched genuine token works
      expect((await me(genuine.access)).status).toBe(200);
    });

    const cases: Array<[string, () => Promise<string>]> = [
      [
        'tampered payload (sub changed, signature kept)',
        async () => {
          const [header, payload, signature] = genuine.access.split('.');
          const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as JWTPayload;
          const forged = { ...claims, sub: String(other.id), user_id: other.id };
          return `${header}.${b64json(forged)}.${signature}`;
        },
      ],
      [
        'alg=none, no signature',
        async () => {
          const header = { alg: 'none', typ: 'at+jwt', kid: serverJwk(fx.server.latchkey).kid };
          return `${b64json(header)}.${b64json(validClaims(victim))}.`;
        },
      ],
      [
        'alg=none, no kid, original signature appended',
        async () => {
          const signature = genuine.access.split('.')[2];
          return `${b64json({ alg: 'none', typ: 'at+jwt' })}.${b64json(validClaims(victim))}.${signature}`;
        },
      ],
      [
        'HS256 keyed with the published RSA JWK as JSON',
        async () => {
          const jwk = await publishedRsaKey();
          return signWith(new TextEncoder().encode(JSON.stringify(jwk)), validClaims(victim), { alg: 'HS256', typ: 'at+jwt', kid: jwk.kid! });
        },
      ],
      [
        'HS256 keyed with the RSA modulus bytes',
        async () => {
          const jwk = await publishedRsaKey();
          return signWith(Buffer.from(jwk.n!, 'base64url'), validClaims(victim), { alg: 'HS256', typ: 'at+jwt', kid: jwk.kid! });
        },
      ],
      [
        'HS256 keyed with the RSA public key PEM',
        async () => {
          const jwk = await publishedRsaKey();
          const pem = createPublicKey({ key: jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
          return signWith(Buffer.from(pem), validClaims(victim), { alg: 'HS256', typ: 'at+jwt', kid: jwk.kid! });
        },
      ],
      [
        'unknown kid, signed with a foreign RSA key',
        async () => signWith(ownKey, validClaims(victim), { alg: 'RS256', typ: 'at+jwt', kid: 'made-up-kid-0001' }),
      ],
      [
        'foreign RSA key claiming the kid of the real published key',
        async () => signWith(ownKey, validClaims(victim), { alg: 'RS256', typ: 'at+jwt', kid: serverJwk(fx.server.latchkey).kid! }),
      ],
      [
        'foreign RSA key, no kid at all',
        async () => signWith(ownKey, validClaims(victim), { alg: 'RS256', typ: 'at+jwt' }),
      ],
      [
        'expired (server key)',
        async () => {
          const iat = nowSeconds() - 1000;
          return signWithServerKey({ ...validClaims(victim), iat, exp: iat + 300 });
        },
      ],
      ['wrong aud (server key)', async () => signWithServerKey({ ...validClaims(victim), aud: `${fx.server.url}/o` })],
      ['wrong iss (server key)', async () => signWithServerKey({ ...validClaims(victim), iss: 'https://evil.example/o' })],
      ["typ 'JWT' (server key)", async () => signWithServerKey(validClaims(victim), { typ: 'JWT' })],
      ['typ refresh+jwt (server key)', async () => signWithServerKey(validClaims(victim), { typ: 'refresh+jwt' })],
      [
        'missing jti (server key)',
        async () => {
          const claims = validClaims(victim);
          delete claims.jti;
          return signWithServerKey(claims);
        },
      ],
      [
        'missing sub (server key)',
        async () => {
          const claims = validClaims(victim);
          delete claims.sub;
          return signWithServerKey(claims);
        },
      ],
      [
        'missing exp (server key)',
        async () => {
          const claims = validClaims(victim);
          delete claims.exp;
          return signWithServerKey(claims);
        },
      ],
      ['sub of a user that does not exist (server key)', async () => signWithServerKey({ ...validClaims(victim), sub: '987654321' })],
    ];

    it.each(cases)('%s -> 401', async (label, build) => {
      const token = await build();
      await expectRefusedAtMe(token, label);
      // /api/token/verify/ checks the user too (unlike simplejwt's): a token must verify
      // only where it would be accepted.
      await expectRefusedAtVerify(token, label);
    });

    it('refuses a missing or malformed Authorization header with a Bearer challenge', async () => {
      const none = await answer(await fetch(`${fx.server.url}/auth/me/`));
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate') ?? '').toMatch(/^Bearer error="invalid_token"/);
      await expectRefusedAtMe('not.a.jwt', 'garbage JWT shape');
      await expectRefusedAtVerify('not.a.jwt', 'garbage JWT shape');
    });
  });

  // ---------------------------------------------------------------- 3. refresh rotation

  describe('refresh rotation', () => {
    it('rotates: new pair, new refresh jti, same user', async () => {
      const user = await makeUser(fx.server.latchkey);
      const first = await obtain(user.username);
      const res = await refreshAt(first.refresh);
      expect(res.status, res.text).toBe(200);
      const second = res.json as unknown as Pair;
      expect(Object.keys(second).sort()).toEqual(['access', 'refresh']);
      expect(second.refresh).not.toBe(first.refresh);
      expect(decodeJwt(second.refresh).jti).not.toBe(decodeJwt(first.refresh).jti);
      expect(decodeJwt(second.access).sub).toBe(String(user.id));
      expect((await me(second.access)).status).toBe(200);
      // The next generation rotates again.
      expect((await refreshAt(second.refresh)).status).toBe(200);
    });

    it('treats a replayed refresh token as theft: 401 and the whole family is revoked', async () => {
      const user = await makeUser(fx.server.latchkey);
      const first = await obtain(user.username);
      const rotated = await refreshAt(first.refresh);
      expect(rotated.status).toBe(200);
      const second = rotated.json as unknown as Pair;

      const replay = await refreshAt(first.refresh);
      expect(replay.status, replay.text).toBe(401);
      expect(replay.json['error']).toBe('invalid_token');
      const afterwards = await refreshAt(second.refresh);
      expect(afterwards.status, afterwards.text).toBe(401);
      // Another login of the same user is a different family and is untouched.
      const other = await obtain(user.username);
      expect((await refreshAt(other.refresh)).status).toBe(200);
    });

    it('lets exactly one of two concurrent refreshes of one token win', async () => {
      const user = await makeUser(fx.server.latchkey);
      const pair = await obtain(user.username);
      const results = await Promise.all([refreshAt(pair.refresh), refreshAt(pair.refresh)]);
      const statuses = results.map((r) => r.status).sort();
      expect(statuses).toEqual([200, 401]);
    });

    it('a concurrent reuse is a reuse: the winner of the race gets no refresh token that outlives the revocation', async () => {
      // Repeated a few times: the outcome must not depend on which request reaches the database first.
      for (let round = 0; round < 5; round++) {
        const user = await makeUser(fx.server.latchkey);
        const pair = await obtain(user.username);
        const results = await Promise.all([refreshAt(pair.refresh), refreshAt(pair.refresh)]);
        const winner = results.find((r) => r.status === 200);
        expect(winner, `round ${round}`).toBeDefined();
        const next = await refreshAt((winner!.json as unknown as Pair).refresh);
        expect(next.status, `round ${round}: the winner's refresh token survived the family revocation`).toBe(401);
      }
    });

    it('refuses a refresh for a user deactivated meanwhile', async () => {
      const user = await makeUser(fx.server.latchkey);
      const pair = await obtain(user.username);
      await fx.server.latchkey.storage.users.setActive(user.id, false);
      const res = await refreshAt(pair.refresh);
      expect(res.status, res.text).toBe(401);
      expect(res.json['error']).toBe('invalid_token');
      await expectRefusedAtMe(pair.access, 'access JWT of a deactivated user');
      // Reactivated: still nothing from that refresh token (it was spent on the refused attempt or revoked).
      await fx.server.latchkey.storage.users.setActive(user.id, true);
      expect((await obtain(user.username)).access).toMatch(JWT);
    });

    it('refuses access JWTs, garbage and foreign-signed tokens as refresh tokens', async () => {
      const user = await makeUser(fx.server.latchkey);
      const pair = await obtain(user.username);
      expect((await refreshAt(pair.access)).status).toBe(401);
      expect((await refreshAt('not.a.jwt')).status).toBe(401);
      const { privateKey } = await generateKeyPair('RS256');
      const claims = { ...decodeJwt(pair.refresh) };
      const forged = await signWith(privateKey, claims, { alg: 'RS256', typ: 'refresh+jwt', kid: decodeProtectedHeader(pair.refresh).kid! });
      expect((await refreshAt(forged)).status).toBe(401);
      // The genuine one still works: none of the above spent it.
      expect((await refreshAt(pair.refresh)).status).toBe(200);
    });
  });

  // ---------------------------------------------------------------- 5. identical credential failures

  it('answers wrong password, unknown user and inactive user identically at /api/token/ and /users/login/', async () => {
    const active = await makeUser(fx.server.latchkey);
    const inactive = await makeUser(fx.server.latchkey, { isActive: false });
    const attempts = [
      { username: active.username, password: 'not the right passphrase' },
      { username: `nobody_${randomBytes(4).toString('hex')}`, password: PASSWORD },
      { username: inactive.username, password: PASSWORD },
    ];

    const jwtAnswers = await Promise.all(attempts.map((a) => postJson('/api/token/', a)));
    for (const res of jwtAnswers) expect(res.status, res.text).toBe(401);
    expect(new Set(jwtAnswers.map((r) => r.text)).size).toBe(1);
    expect(jwtAnswers[0]!.json).toMatchObject({ error: expect.any(String), error_description: expect.any(String) });
    expect(jwtAnswers[0]!.text).not.toContain(active.username);

    const loginAnswers = await Promise.all(attempts.map((a) => postForm('/users/login/', a)));
    // As django-oauth-toolkit's password grant answered: 400 invalid_grant.
    for (const res of loginAnswers) expect(res.status, res.text).toBe(400);
    expect(loginAnswers[0]!.json).toMatchObject({ error: 'invalid_grant' });
    expect(new Set(loginAnswers.map((r) => r.text)).size).toBe(1);
    // The same through the email field.
    const byEmail = await postForm('/users/login/', { email: inactive.email!, password: PASSWORD });
    expect(byEmail.status).toBe(400);
    expect(byEmail.text).toBe(loginAnswers[0]!.text);

    // Positive control: the right password for the active user passes both.
    expect((await postJson('/api/token/', { username: active.username, password: PASSWORD })).status).toBe(200);
    expect((await postForm('/users/login/', { username: active.username, password: PASSWORD })).status).toBe(200);
  });

  // ---------------------------------------------------------------- 6. /users/register/

  describe('/users/register/', () => {
    const fresh = () => `reg_${randomBytes(4).toString('hex')}`;

    it('registers from a form: 201 with the user, and no password field in the output', async () => {
      const username = fresh();
      const res = await postForm('/users/register/', {
        username,
        email: `${username}@example.com`,
        password: PASSWORD,
        confirm_password: PASSWORD,
      });
      expect(res.status, res.text).toBe(201);
      expect(res.json).toMatchObject({ username, email: `${username}@example.com`, is_active: true, is_staff: false, is_superuser: false });
      expect(typeof res.json['id']).toBe('number');
      expect(res.text.toLowerCase()).not.toContain('password');
      expect(res.text).not.toContain(PASSWORD);
      // The account works.
      expect((await postJson('/api/token/', { username, password: PASSWORD })).status).toBe(200);
    });

    it('refuses mismatched confirmation (400), duplicates (409) and short passwords (400)', async () => {
      const username = fresh();
      const mismatch = await postForm('/users/register/', { username, password: PASSWORD, confirm_password: `${PASSWORD}!` });
      expect(mismatch.status, mismatch.text).toBe(400);
      expect(await fx.server.latchkey.storage.users.findByLogin(username)).toBeUndefined();

      const ok = await postForm('/users/register/', { username, password: PASSWORD, confirm_password: PASSWORD });
      expect(ok.status, ok.text).toBe(201);
      const duplicate = await postForm('/users/register/', { username, password: PASSWORD, confirm_password: PASSWORD });
      expect(duplicate.status, duplicate.text).toBe(409);

      const short = fresh();
      const tooShort = await postForm('/users/register/', { username: short, password: 'short', confirm_password: 'short' });
      expect(tooShort.status, tooShort.text).toBe(400);
      expect(await fx.server.latchkey.storage.users.findByLogin(short)).toBeUndefined();
    });

    it('ignores is_active from anonymous callers and honours it from staff', async () => {
      const anonymousName = fresh();
      const anonymous = await postForm('/users/register/', {
        username: anonymousName,
        password: PASSWORD,
        confirm_password: PASSWORD,
        is_active: 'false',
      });
      expect(anonymous.status, anonymous.text).toBe(201);
      expect(anonymous.json['is_active']).toBe(true);
      expect((await fx.server.latchkey.storage.users.findByLogin(anonymousName))?.isActive).toBe(true);

      const staff = await makeUser(fx.server.latchkey, { isStaff: true });
      const { access } = await obtain(staff.username);
      const staffName = fresh();
      const byStaff = await postForm(
        '/users/register/',
        { username: staffName, password: PASSWORD, confirm_password: PASSWORD, is_active: 'false' },
        access,
      );
      expect(byStaff.status, byStaff.text).toBe(201);
      expect(byStaff.json['is_active']).toBe(false);
      expect((await fx.server.latchkey.storage.users.findByLogin(staffName))?.isActive).toBe(false);
      expect((await postJson('/api/token/', { username: staffName, password: PASSWORD })).status).toBe(401);

      // A non-staff bearer is as good as anonymous here.
      const plain = await makeUser(fx.server.latchkey);
      const plainAccess = (await obtain(plain.username)).access;
      const plainName = fresh();
      const byPlain = await postForm(
        '/users/register/',
        { username: plainName, password: PASSWORD, confirm_password: PASSWORD, is_active: 'false' },
        plainAccess,
      );
      expect(byPlain.status, byPlain.text).toBe(201);
      expect(byPlain.json['is_active']).toBe(true);
    });
  });

  // ---------------------------------------------------------------- 7. /users/login/

  describe('/users/login/ issues provider tokens to the first-party client', () => {
    let config: oidc.Configuration;

    beforeAll(async () => {
      config = await oidc.discovery(new URL(issuer), FIRST_PARTY, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    });

    it('logs in with the username and with the email; the tokens work at userinfo and introspection', async () => {
      const user = await makeUser(fx.server.latchkey);
      const logins: Array<Record<string, string>> = [{ username: user.username }, { email: user.email! }];
      for (const login of logins) {
        const res = await postForm('/users/login/', { ...login, password: PASSWORD });
        expect(res.status, res.text).toBe(200);
        expect(res.headers.get('cache-control')).toContain('no-store');
        expect(res.json).toMatchObject({
          access_token: expect.any(String),
          refresh_token: expect.any(String),
          token_type: 'Bearer',
          expires_in: expect.any(Number),
          scope: expect.any(String),
        });
        const tokens = res.json as unknown as oidc.TokenEndpointResponse & { refresh_token: string; scope: string };
        expect(tokens.scope.split(' ')).toEqual(expect.arrayContaining(['openid', 'profile', 'email']));

        const info = await oidc.fetchUserInfo(config, tokens.access_token, String(user.id));
        expect(info).toMatchObject({ sub: String(user.id), preferred_username: user.username, email: user.email });

        const introspection = await oidc.tokenIntrospection(config, tokens.access_token);
        expect(introspection).toMatchObject({ active: true, client_id: FIRST_PARTY, sub: String(user.id) });

        // The provider's access token is also a bearer for our API.
        const who = await me(tokens.access_token);
        expect(who.status, who.text).toBe(200);
        expect(who.json['id']).toBe(user.id);
      }
    });

    it('refreshes at /o/token as the public client', async () => {
      const user = await makeUser(fx.server.latchkey);
      const login = await postForm('/users/login/', { username: user.username, password: PASSWORD });
      expect(login.status, login.text).toBe(200);
      const first = login.json as unknown as { access_token: string; refresh_token: string };

      const refreshed = await oidc.refreshTokenGrant(config, first.refresh_token);
      expect(refreshed.access_token).toMatch(ACCESS_TOKEN);
      expect(refreshed.access_token).not.toBe(first.access_token);
      expect(refreshed.refresh_token).toMatch(OPAQUE_TOKEN);
      expect(refreshed.refresh_token).not.toBe(first.refresh_token);
      expect((await oidc.fetchUserInfo(config, refreshed.access_token, String(user.id))).sub).toBe(String(user.id));
      expect(await oidc.tokenIntrospection(config, refreshed.access_token)).toMatchObject({ active: true, client_id: FIRST_PARTY });
    });

    it('revokes at /o/token/revocation as the public client', async () => {
      const user = await makeUser(fx.server.latchkey);
      const login = await postForm('/users/login/', { username: user.username, password: PASSWORD });
      const tokens = login.json as unknown as { access_token: string; refresh_token: string };
      expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(true);

      await oidc.tokenRevocation(config, tokens.access_token);
      expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(false);
      await expect(oidc.fetchUserInfo(config, tokens.access_token, String(user.id))).rejects.toThrow();
      expect((await me(tokens.access_token)).status).toBe(401);

      await oidc.tokenRevocation(config, tokens.refresh_token);
      await expect(oidc.refreshTokenGrant(config, tokens.refresh_token)).rejects.toMatchObject({ error: 'invalid_grant' });
    });

    it('refuses a scope the first-party client is not allowed', async () => {
      const user = await makeUser(fx.server.latchkey);
      const res = await postForm('/users/login/', { username: user.username, password: PASSWORD, scope: 'openid admin' });
      expect(res.status, res.text).toBe(400);
      expect(res.json['error']).toBe('invalid_scope');
    });
  });

  // ---------------------------------------------------------------- 8. grant_type=password

  describe('grant_type=password at /o/token', () => {
    it('issues tokens to a confidential client allowed the grant; userinfo works', async () => {
      const user = await makeUser(fx.server.latchkey);
      const made = await makeClient(fx.server.latchkey, { grantTypes: ['password', 'refresh_token'], redirectUris: [] });
      expect(made.clientSecret).toMatch(CLIENT_SECRET);
      const config = await discover(issuer, made.client.clientId, made.clientSecret);

      const tokens = await oidc.genericGrantRequest(config, 'password', { username: user.username, password: PASSWORD, scope: 'openid profile' });
      expect(tokens.access_token).toMatch(ACCESS_TOKEN);
      expect(tokens.token_type.toLowerCase()).toBe('bearer');
      expect(tokens.scope?.split(' ').sort()).toEqual(['openid', 'profile']);
      const info = await oidc.fetchUserInfo(config, tokens.access_token, String(user.id));
      expect(info).toMatchObject({ sub: String(user.id), preferred_username: user.username });
      expect(info['email']).toBeUndefined();
      expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject({ active: true, client_id: made.client.clientId });

      // Wrong password and unknown user: invalid_grant, no token.
      await expect(
        oidc.genericGrantRequest(config, 'password', { username: user.username, password: 'not the right passphrase', scope: 'openid' }),
      ).rejects.toMatchObject({ error: 'invalid_grant' });
      await expect(
        oidc.genericGrantRequest(config, 'password', { username: `nobody_${randomBytes(4).toString('hex')}`, password: PASSWORD }),
      ).rejects.toMatchObject({ error: 'invalid_grant' });
    });

    it('refuses the grant for a client whose grant_types do not include it', async () => {
      const user = await makeUser(fx.server.latchkey);
      const made = await makeClient(fx.server.latchkey, { grantTypes: ['authorization_code', 'refresh_token'] });
      const config = await discover(issuer, made.client.clientId, made.clientSecret);
      const error = await oidc
        .genericGrantRequest(config, 'password', { username: user.username, password: PASSWORD, scope: 'openid' })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(oidc.ResponseBodyError);
      const body = error as oidc.ResponseBodyError;
      expect([400, 401]).toContain(body.status);
      // node-oidc-provider answers a grant type the client is not registered for with
      // invalid_request ("requested grant type is not allowed for this client").
      expect(body.error).toMatch(/^(invalid_request|unauthorized_client|unsupported_grant_type)$/);
      expect(body.error_description ?? '').toMatch(/grant type/i);
      expect(body.cause).not.toHaveProperty('access_token');

      // Raw request too: no token in the body whatever the error.
      const raw = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${made.client.clientId}:${made.clientSecret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'password', username: user.username, password: PASSWORD }).toString(),
      });
      expect([400, 401]).toContain(raw.status);
      expect(await raw.text()).not.toContain('access_token');
    });

    it('refuses a scope outside the client\'s allowed scope with invalid_scope', async () => {
      const user = await makeUser(fx.server.latchkey);
      const made = await makeClient(fx.server.latchkey, { grantTypes: ['password', 'refresh_token'], redirectUris: [], scope: 'openid profile' });
      const config = await discover(issuer, made.client.clientId, made.clientSecret);
      await expect(
        oidc.genericGrantRequest(config, 'password', { username: user.username, password: PASSWORD, scope: 'openid email' }),
      ).rejects.toMatchObject({ error: 'invalid_scope' });
      // Positive control: the allowed scope passes.
      const ok = await oidc.genericGrantRequest(config, 'password', { username: user.username, password: PASSWORD, scope: 'openid profile' });
      expect(ok.access_token).toMatch(ACCESS_TOKEN);
    });
  });

  // ---------------------------------------------------------------- 4. key rotation (last: it changes the keys)

  it('keeps tokens issued before a key rotation valid and signs new ones with the new key', async () => {
    const user = await makeUser(fx.server.latchkey);
    const before = await obtain(user.username);
    const oldKid = decodeProtectedHeader(before.access).kid;
    expect(oldKid).toBe(serverJwk(fx.server.latchkey).kid);

    const rotation = await fx.server.latchkey.services.keyStore.rotate(RETIRED_KEY_RETENTION_MS);
    expect(rotation.retired).toContain(oldKid);
    expect(await fx.server.latchkey.host.refresh()).toBe(true);
    const newKid = serverJwk(fx.server.latchkey).kid;
    expect(newKid).not.toBe(oldKid);
    expect(rotation.added).toContain(newKid);

    // Both keys are published; the old token still verifies, here and against /o/jwks.
    const kids = (await liveJwks()).keys.map((k) => k.kid);
    expect(kids).toEqual(expect.arrayContaining([oldKid, newKid]));
    expect((await verifyAt(before.access)).status).toBe(200);
    expect((await me(before.access)).status).toBe(200);
    await verifyWithLiveJwks(before.access, 'at+jwt');

    // New tokens carry the new kid and verify against /o/jwks.
    const after = await obtain(user.username);
    expect(decodeProtectedHeader(after.access).kid).toBe(newKid);
    expect(decodeProtectedHeader(after.refresh).kid).toBe(newKid);
    await verifyWithLiveJwks(after.access, 'at+jwt');
    await verifyWithLiveJwks(after.refresh, 'refresh+jwt');
    expect((await verifyAt(after.access)).status).toBe(200);

    // A refresh token signed with the retired key still refreshes, and the result uses the new key.
    const refreshed = await refreshAt(before.refresh);
    expect(refreshed.status, refreshed.text).toBe(200);
    expect(decodeProtectedHeader((refreshed.json as unknown as Pair).access).kid).toBe(newKid);
  });
});
