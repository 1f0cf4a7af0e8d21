/**
 * Every URL Latchkey emits comes from PUBLIC_URL, whatever the request claims about the URL
 * it was sent to: Host, X-Forwarded-Host and X-Forwarded-Proto (with and without
 * TRUST_PROXY), or an absolute-form request target. Requests go through node:http, which
 * sends the Host header it is given (fetch would not).
 */
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/env.js';
import { rawRequest, type Answer, type RawRequest } from '../helpers/http.js';
import { makeClient, makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const EVIL = 'evil.example';

interface Setup {
  name: string;
  env: Record<string, string>;
}

const SETUPS: Setup[] = [
  { name: 'direct, TRUST_PROXY off', env: {} },
  { name: 'behind a proxy, TRUST_PROXY=1 and an https PUBLIC_URL', env: { PUBLIC_URL: 'https://id.example.test', TRUST_PROXY: '1' } },
];

/** What a hostile client (or a proxy passing its headers on) may claim about the URL. */
const CLAIMS: Array<[string, Record<string, string>]> = [
  ['Host', { host: EVIL }],
  ['X-Forwarded-Host', { 'x-forwarded-host': EVIL }],
  ['Host, X-Forwarded-Host and X-Forwarded-Proto', { host: EVIL, 'x-forwarded-host': EVIL, 'x-forwarded-proto': 'http' }],
];

describe.each(BACKENDS)('URLs come from PUBLIC_URL, never from the request (%s)', (backend) => {
  describe.each(SETUPS)('$name', ({ env }) => {
    let server: TestServer;
    let clientId: string;
    let staffToken: string;

    /** The socket Latchkey listens on, whatever PUBLIC_URL says. */
    const local = () => `http://127.0.0.1:${server.port}`;
    const send = (target: string, claims: Record<string, string>, init: RawRequest = {}) =>
      rawRequest(local(), target, { ...init, headers: { ...claims, ...init.headers } });

    beforeAll(async () => {
      server = await startTestServer(backend, env);
      clientId = (await makeClient(server.latchkey, { name: 'Web App' })).client.clientId;
      const staff = await makeUser(server.latchkey, { isStaff: true });
      // Two more users, so that a page of one has a `next` link.
      await makeUser(server.latchkey);
      await makeUser(server.latchkey);
      const login = await rawRequest(local(), '/api/token/', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: staff.username, password: PASSWORD }),
      });
      expect(login.status, login.text).toBe(200);
      staffToken = login.json['access'] as string;
    });
    afterAll(async () => server?.stop());

    function expectNoEvil(answer: Answer, label: string): void {
      expect(answer.text, label).not.toContain(EVIL);
      for (const [name, value] of answer.headers) expect(value, `${label}: ${name}`).not.toContain(EVIL);
    }

    /** Every URL in the discovery document is under PUBLIC_URL. */
    function expectDiscoveryOnPublicUrl(answer: Answer, label: string): void {
      expect(answer.status, `${label}: ${answer.text}`).toBe(200);
      expectNoEvil(answer, label);
      expect(answer.json['issuer'], label).toBe(server.issuer);
      const urls = Object.entries(answer.json).filter(([key, value]) => typeof value === 'string' && /_(endpoint|uri)$/.test(key));
      expect(urls.length, label).toBeGreaterThan(5);
      for (const [key, value] of urls) expect(value, `${label}: ${key}`).toMatch(new RegExp(`^${server.issuer.replace(/[.]/g, '\\.')}/`));
    }

    it.each(CLAIMS)('discovery ignores %s', async (label, claims) => {
      expectDiscoveryOnPublicUrl(await send('/o/.well-known/openid-configuration', claims), label);
    });

    it('discovery ignores the host of an absolute-form request target', async () => {
      const answer = await send(`http://${EVIL}/o/.well-known/openid-configuration`, { host: EVIL });
      expectDiscoveryOnPublicUrl(answer, 'absolute-form');
    });

    it.each(CLAIMS)('the authorization redirect to the login page ignores %s', async (label, claims) => {
      const params = new URLSearchParams({
        client_id: clientId,
        redirect_uri: REDIRECT_URI,
        response_type: 'code',
        scope: 'openid',
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
      });
      const answer = await send(`/o/auth?${params}`, { ...claims, accept: 'text/html' });
      expect(answer.status, answer.text).toBe(303);
      expectNoEvil(answer, label);
      const location = new URL(answer.headers.get('location') ?? '', server.url);
      expect(location.origin).toBe(new URL(server.url).origin);
      expect(location.pathname).toMatch(/^\/interaction\//);
    });

    it.each(CLAIMS)('pagination links of /api/users/ ignore %s', async (label, claims) => {
      const answer = await send('/api/users/?page_size=1&page=2', { ...claims, authorization: `Bearer ${staffToken}`, accept: 'application/json' });
      expect(answer.status, answer.text).toBe(200);
      expectNoEvil(answer, label);
      expect(answer.json['next']).toBe(`${server.url}/api/users/?page_size=1&page=3`);
      expect(answer.json['previous']).toBe(`${server.url}/api/users/?page_size=1&page=1`);
    });

    it.each(CLAIMS)('404 pages ignore %s', async (label, claims) => {
      for (const path of ['/no-such-page', '/o/no-such-endpoint', '/api/no-such-thing/']) {
        for (const accept of ['text/html', 'application/json']) {
          const answer = await send(path, { ...claims, accept });
          expect(answer.status, `${path} ${accept}`).toBe(404);
          expectNoEvil(answer, `${label} ${path} ${accept}`);
        }
      }
    });

    describe('the DPoP htu the token endpoint expects', () => {
      let machine: { id: string; secret: string };
      let key: { privateKey: CryptoKey; jwk: JWK };

      beforeAll(async () => {
        const made = await makeClient(server.latchkey, { name: 'Machine', grantTypes: ['client_credentials'], redirectUris: [], postLogoutRedirectUris: [] });
        machine = { id: made.client.clientId, secret: made.clientSecret ?? '' };
        const pair = await generateKeyPair('ES256', { extractable: true });
        key = { privateKey: pair.privateKey, jwk: await exportJWK(pair.publicKey) };
      });

      const proofFor = (htu: string) =>
        new SignJWT({ htm: 'POST', htu, jti: randomBytes(16).toString('base64url'), iat: Math.floor(Date.now() / 1000) })
          .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk })
          .sign(key.privateKey);

      const tokenRequest = async (htu: string) =>
        send('/o/token', { host: EVIL, 'x-forwarded-host': EVIL }, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: `Basic ${Buffer.from(`${machine.id}:${machine.secret}`).toString('base64')}`,
            dpop: await proofFor(htu),
          },
          body: 'grant_type=client_credentials',
        });

      it('is PUBLIC_URL/o/token: a proof naming the claimed host is refused, one naming PUBLIC_URL accepted', async () => {
        const claimed = await tokenRequest(`http://${EVIL}/o/token`);
        expect(claimed.status, claimed.text).toBe(400);
        expect(claimed.json['error']).toBe('invalid_dpop_proof');
        const right = await tokenRequest(`${server.issuer}/token`);
        expect(right.status, right.text).toBe(200);
        expect(right.json['token_type']).toBe('DPoP');
      });
    });
  });
});
