/**
 * Dynamic client registration (RFC 7591 at /o/reg, RFC 7592 at /o/reg/<id>) refuses
 * plain-http redirect URIs except on loopback (RFC 8252 section 7.3): whoever holds an
 * initial access token could otherwise register a client whose codes travel unprotected.
 * Staff-made clients (/api/clients/) may still use http, for development hosts.
 */
import { beforeAll, expect, it } from 'vitest';
import { REGISTRATION_POLICY } from '../../src/oidc/provider.js';
import { callApi, rawRequest, type Answer } from '../helpers/http.js';
import { makeUser } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';

type Json = Record<string, unknown>;

const REFUSED_REDIRECTS = [
  'http://example.com/cb',
  'http://app.local/cb',
  'http://10.0.0.1/cb',
  'http://127.0.0.1.evil.example/cb',
  'http://localhost.evil.example/cb',
  'http://[::2]/cb',
];

const ACCEPTED_REDIRECTS = ['http://127.0.0.1:8080/cb', 'http://127.1.2.3/cb', 'http://localhost/cb', 'http://[::1]/cb', 'https://app.example.com/cb'];

describeOnBackends('dynamic registration refuses http redirect URIs except loopback (%s)', (fx) => {
  let iat: string;

  beforeAll(async () => {
    // What `cli iat create` makes: an initial access token carrying our registration policy.
    iat = await new fx.server.latchkey.host.provider.InitialAccessToken({ policies: [REGISTRATION_POLICY] }).save();
  });

  const register = (metadata: Json) => callApi(fx.server.url, 'POST', `${fx.server.issuer}/reg`, { token: iat, json: metadata });
  const clientCount = async () => Number(((await fx.server.latchkey.storage.knex('clients').count({ n: '*' }).first()) as { n: number | string }).n);
  const webClient = (redirectUris: string[], extra: Json = {}): Json => ({
    client_name: 'Registered',
    redirect_uris: redirectUris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    ...extra,
  });

  function expectRefused(answer: Answer, uri: string): void {
    expect(answer.status, `${uri}: ${answer.text}`).toBe(400);
    expect(answer.json['error'], uri).toBe('invalid_redirect_uri');
    expect(String(answer.json['error_description']), uri).toMatch(/loopback/);
    expect(answer.json['client_id'], uri).toBeUndefined();
  }

  it.each(REFUSED_REDIRECTS)('refuses the redirect URI %s with 400 invalid_redirect_uri and stores nothing', async (uri) => {
    const before = await clientCount();
    expectRefused(await register(webClient([uri])), uri);
    // Also hidden behind an acceptable one.
    expectRefused(await register(webClient(['https://app.example.com/cb', uri])), uri);
    expect(await clientCount()).toBe(before);
  });

  it('refuses an http post_logout_redirect_uri that is not loopback', async () => {
    const before = await clientCount();
    const answer = await register(webClient(['https://app.example.com/cb'], { post_logout_redirect_uris: ['http://example.com/signed-out'] }));
    expectRefused(answer, 'post_logout_redirect_uris');
    expect(String(answer.json['error_description'])).toContain('post_logout_redirect_uris');
    expect(await clientCount()).toBe(before);
  });

  it.each(ACCEPTED_REDIRECTS)('accepts the redirect URI %s', async (uri) => {
    const answer = await register(webClient([uri], { post_logout_redirect_uris: [uri.replace(/\/cb$/, '/out')] }));
    expect(answer.status, answer.text).toBe(201);
    expect(answer.json['redirect_uris']).toEqual([new URL(uri).href]);
  });

  it('accepts a native app with a private-use scheme (RFC 8252 section 7.1)', async () => {
    const answer = await register(webClient(['com.example.app:/cb'], { application_type: 'native', token_endpoint_auth_method: 'none' }));
    expect(answer.status, answer.text).toBe(201);
    expect(answer.json['redirect_uris']).toEqual(['com.example.app:/cb']);
  });

  it('applies the same rule to updates (RFC 7592 PUT /o/reg/<id>)', async () => {
    const created = await register(webClient(['https://app.example.com/cb']));
    expect(created.status, created.text).toBe(201);
    const uri = created.json['registration_client_uri'] as string;
    let rat = created.json['registration_access_token'] as string;
    const current = (({ registration_access_token: _rat, registration_client_uri: _uri, client_secret_expires_at: _exp, client_id_issued_at: _at, client_secret: _secret, ...rest }) => rest)(created.json);

    const refused = await callApi(fx.server.url, 'PUT', uri, { token: rat, json: { ...current, redirect_uris: ['http://example.com/cb'] } });
    expectRefused(refused, 'PUT http://example.com/cb');
    const unchanged = await callApi(fx.server.url, 'GET', uri, { token: rat });
    expect(unchanged.status, unchanged.text).toBe(200);
    expect(unchanged.json['redirect_uris']).toEqual(['https://app.example.com/cb']);

    const accepted = await callApi(fx.server.url, 'PUT', uri, { token: rat, json: { ...current, redirect_uris: ['http://127.0.0.1:9000/cb'] } });
    expect(accepted.status, accepted.text).toBe(200);
    expect(accepted.json['redirect_uris']).toEqual(['http://127.0.0.1:9000/cb']);
    rat = (accepted.json['registration_access_token'] as string | undefined) ?? rat;
    expect((await callApi(fx.server.url, 'GET', uri, { token: rat })).json['redirect_uris']).toEqual(['http://127.0.0.1:9000/cb']);
  });

  it('names PUBLIC_URL in registration_client_uri whatever Host the registrant sent', async () => {
    const answer = await rawRequest(`http://127.0.0.1:${fx.server.port}`, '/o/reg', {
      method: 'POST',
      headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example', authorization: `Bearer ${iat}`, 'content-type': 'application/json' },
      body: JSON.stringify(webClient(['https://app.example.com/cb'])),
    });
    expect(answer.status, answer.text).toBe(201);
    expect(answer.json['registration_client_uri']).toBe(`${fx.server.issuer}/reg/${String(answer.json['client_id'])}`);
  });

  it('leaves staff-made clients (/api/clients/) free to use http, for development hosts', async () => {
    const staff = await makeUser(fx.server.latchkey, { isStaff: true });
    const { access } = await fx.apiLogin(staff.username);
    const made = await callApi(fx.server.url, 'POST', '/api/clients/', {
      token: access,
      json: { client_name: 'Dev App', redirect_uris: ['http://app.local/cb'] },
    });
    expect(made.status, made.text).toBe(201);
    expect(made.json['redirect_uris']).toEqual(['http://app.local/cb']);
  });
});
