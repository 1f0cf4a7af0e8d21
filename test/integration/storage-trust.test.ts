/**
 * Issue 15: what node-oidc-provider may trust our storage with, over a real server on each
 * backend. A device code that has expired answers RFC 8628 expired_token; a refresh replay
 * lost in a race is revoked and audited like a sequential one; revoking an access token ends
 * it alone, revoking a refresh token ends the grant; and the database holds no token, code or
 * cookie value that a client or browser was given, also for rows written before the upgrade.
 */
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import * as hashedPayloadIds from '../../migrations/20261207001000_hashed_payload_ids.js';
import { CLOCK_TOLERANCE_SECONDS } from '../../src/oidc/clock-tolerance.js';
import { REGISTRATION_POLICY } from '../../src/oidc/provider.js';
import { secretDigest } from '../../src/oidc/stored-ids.js';
import type { RunningLatchkey } from '../../src/start.js';
import { formOf, providerForm, signInAndAllow, UserAgent } from '../helpers/browserless.js';
import { freshDatabase, type TestDatabase } from '../helpers/database.js';
import { BACKENDS } from '../helpers/env.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { callApi } from '../helpers/http.js';
import { oauthError } from '../helpers/oauth-error.js';
import { freePort } from '../helpers/process.js';
import { authorizationRequest, discover, loginAndExchange, makeClient, makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { startOnDatabase } from '../helpers/server.js';
import { OPAQUE_TOKEN } from '../helpers/shapes.js';

const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
const DEVICE_TTL_MS = 600_000;

/** A UserAgent that keeps every cookie value it was ever given (the jar forgets expired ones). */
class RecordingAgent extends UserAgent {
  readonly cookieValues = new Map<string, Set<string>>();

  override async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const response = await super.fetch(url, init);
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = decodeURIComponent(pair.slice(eq + 1).trim());
      if (value === '') continue;
      if (!this.cookieValues.has(name)) this.cookieValues.set(name, new Set());
      this.cookieValues.get(name)!.add(value);
    }
    return response;
  }
}

/** The browser side of the device flow: enter the code, confirm, sign in, allow. */
async function approveDevice(issuer: string, baseUrl: string, agent: UserAgent, userCode: string, username: string): Promise<string> {
  const start = await agent.fetch(`${issuer}/device`);
  const input = providerForm(await start.text(), 'op.deviceInputForm');
  const submitted = await agent.postForm(new URL(input.action, baseUrl), { ...input.fields, user_code: userCode });
  const confirm = providerForm(await submitted.text(), 'op.deviceConfirmForm');
  const confirmed = await agent.postForm(new URL(confirm.action, baseUrl), confirm.fields);
  return (await signInAndAllow(agent, new URL(confirmed.headers.get('location')!, baseUrl), username, PASSWORD, { loginRequired: false })).text();
}

/** One poll of the token endpoint with a device code: the OAuth error, or 'ok'. */
async function pollOnce(issuer: string, clientId: string, deviceCode: string): Promise<string> {
  const response = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: DEVICE_CODE, device_code: deviceCode, client_id: clientId }),
  });
  const body = (await response.json()) as { error?: string };
  return response.status === 200 ? 'ok' : (body.error ?? `status ${response.status}`);
}

/** The library's normal form of a user code (as it stores and looks it up). */
const normalUserCode = (userCode: string) => userCode.replace(/[^A-Z]/gi, '').toUpperCase();

/**
 * fetch keeps idle keep-alive sockets to the old server on the same port; the first request
 * after the restart may pick one the old server closed. Ask until a fresh connection answers
 * (as test/integration/restart.test.ts does).
 */
async function flushStaleConnections(url: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await (await fetch(url)).arrayBuffer();
      return;
    } catch (error) {
      if (attempt >= 5) throw error;
    }
  }
}

/** Every row of oidc_payloads, as one string per row. */
async function storedRows(knex: Knex): Promise<string[]> {
  return ((await knex('oidc_payloads').select()) as unknown[]).map((row) => JSON.stringify(row));
}

describeOnBackends('storage trust (%s)', (fx) => {
  let web: oidc.Configuration;
  let webClientId: string;
  let tv: oidc.Configuration;
  let tvClientId: string;

  beforeAll(async () => {
    const made = await makeClient(fx.server.latchkey, { name: 'Web', grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'] });
    webClientId = made.client.clientId;
    web = await discover(fx.server.issuer, webClientId, made.clientSecret);
    const device = await makeClient(fx.server.latchkey, { name: 'TV', isPublic: true, redirectUris: [], grantTypes: [DEVICE_CODE, 'refresh_token'] });
    tvClientId = device.client.clientId;
    tv = await discover(fx.server.issuer, tvClientId, null);
  });

  const knex = () => fx.server.latchkey.storage.knex;

  /** The grant an access token was issued under (read from storage: no endpoint tells). */
  async function grantOf(accessToken: string): Promise<string> {
    // By either key: these tests are about revocation, the storage of ids is tested below.
    const row = await knex()('oidc_payloads').where({ model: 'AccessToken' }).whereIn('id', [secretDigest(accessToken), accessToken]).first('grant_id');
    expect(row?.grant_id, 'the access token is stored').toEqual(expect.any(String));
    return row.grant_id as string;
  }

  /** The grant.revoked audit entries for one grant, once the (asynchronous) writes have landed. */
  async function grantRevokedEntries(grantId: string, atLeast = 1): Promise<Array<Record<string, unknown>>> {
    let rows: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 50; i++) {
      rows = (await knex()('audit_events').where({ event: 'grant.revoked', target_id: grantId }).select()) as Array<Record<string, unknown>>;
      if (rows.length >= atLeast) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // Any late second write would show up now.
    await new Promise((r) => setTimeout(r, 200));
    return (await knex()('audit_events').where({ event: 'grant.revoked', target_id: grantId }).select()) as Array<Record<string, unknown>>;
  }

  /** What an audit entry says, without when and about which grant. */
  const entryShape = (row: Record<string, unknown>) => ({
    event: row['event'],
    actor: row['actor'],
    actor_user_id: row['actor_user_id'],
    ip: row['ip'],
    target_type: row['target_type'],
    details: JSON.parse(String(row['details'])) as unknown,
  });

  async function signedInTokens(scope = 'openid offline_access') {
    const user = await makeUser(fx.server.latchkey);
    const { tokens } = await loginAndExchange(web, new UserAgent(), { username: user.username, password: PASSWORD }, { scope, prompt: 'consent' });
    return { user, tokens };
  }

  describe('RFC 8628: an expired device code is expired, not unknown', () => {
    it('answers expired_token to a device polling after the code expired, within the clock tolerance', async () => {
      const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid' });
      expect(await pollOnce(fx.server.issuer, tvClientId, device.device_code)).toBe('authorization_pending');
      // Ten minutes pass (the library's DeviceCode lifetime) and one second more: the row's
      // clock moves back, payload `exp` and stored expiry alike.
      const row = await knex()('oidc_payloads').where({ model: 'DeviceCode', client_id: tvClientId }).orderBy('expires_at', 'desc').first();
      const payload = JSON.parse(String(row.payload)) as Record<string, number>;
      const shift = DEVICE_TTL_MS + 1000;
      await knex()('oidc_payloads')
        .where({ model: 'DeviceCode', id: row.id })
        .update({ payload: JSON.stringify({ ...payload, iat: payload['iat']! - shift / 1000, exp: payload['exp']! - shift / 1000 }), expires_at: Number(row.expires_at) - shift });

      expect(await pollOnce(fx.server.issuer, tvClientId, device.device_code)).toBe('expired_token');
      // openid-client reports it the same way to an application that polls.
      await expect(oidc.pollDeviceAuthorizationGrant(tv, { ...device, interval: 0 })).rejects.toMatchObject({ error: 'expired_token' });
      // The person entering the code is told it has expired or is invalid, and cannot approve it.
      const agent = new UserAgent();
      const input = providerForm(await (await agent.fetch(`${fx.server.issuer}/device`)).text(), 'op.deviceInputForm');
      const entered = await agent.postForm(new URL(input.action, fx.server.url), { ...input.fields, user_code: device.user_code });
      const page = await entered.text();
      expect(page).not.toContain('op.deviceConfirmForm');
      expect(page).toContain('That code is not valid, or it has expired or been used');
    });
  });

  describe('our own tokens are not given the clock tolerance', () => {
    it('refuses an access token and a refresh token from their exp on, while their rows are still kept', async () => {
      const { user, tokens } = await signedInTokens();
      // Both expired a second ago; their rows stay findable for the tolerance.
      for (const [model, value] of [['AccessToken', tokens.access_token], ['RefreshToken', tokens.refresh_token!]] as const) {
        const row = await knex()('oidc_payloads').where({ model, id: secretDigest(value) }).first();
        const payload = JSON.parse(String(row.payload)) as Record<string, number>;
        const exp = Math.floor(Date.now() / 1000) - 1;
        await knex()('oidc_payloads')
          .where({ model, id: row.id })
          .update({ payload: JSON.stringify({ ...payload, exp }), expires_at: (exp + CLOCK_TOLERANCE_SECONDS) * 1000 });
      }
      expect((await oidc.tokenIntrospection(web, tokens.access_token)).active).toBe(false);
      await expect(oidc.fetchUserInfo(web, tokens.access_token, String(user.id))).rejects.toThrow();
      expect(await oauthError(oidc.refreshTokenGrant(web, tokens.refresh_token!))).toBe('invalid_grant');
    });

    it('no longer lists a login session past its exp, though its row is still kept', async () => {
      const user = await makeUser(fx.server.latchkey);
      await loginAndExchange(web, new UserAgent(), { username: user.username, password: PASSWORD });
      const { access } = await fx.apiLogin(user.username);
      const listed = async () => {
        const answer = await fx.bearer('GET', '/api/me/sessions/', access);
        expect(answer.status, answer.text).toBe(200);
        return (answer.json as { results: unknown[] }).results;
      };
      expect(await listed()).toHaveLength(1);
      const row = await knex()('oidc_payloads').where({ model: 'Session', account_id: String(user.id) }).first();
      const exp = Math.floor(Date.now() / 1000) - 1;
      await knex()('oidc_payloads')
        .where({ model: 'Session', id: row.id })
        .update({ payload: JSON.stringify({ ...(JSON.parse(String(row.payload)) as object), exp }), expires_at: (exp + CLOCK_TOLERANCE_SECONDS) * 1000 });
      expect(await listed()).toEqual([]);
    });
  });

  describe('a refresh token redeemed twice at once', () => {
    it('ends the grant and writes the same audit entry as a sequential replay', async () => {
      // The sequential replay, for the entry to compare with.
      const sequential = await signedInTokens();
      const sequentialGrant = await grantOf(sequential.tokens.access_token);
      await oidc.refreshTokenGrant(web, sequential.tokens.refresh_token!);
      expect(await oauthError(oidc.refreshTokenGrant(web, sequential.tokens.refresh_token!))).toBe('invalid_grant');
      const expected = await grantRevokedEntries(sequentialGrant);
      expect(expected).toHaveLength(1);
      expect(entryShape(expected[0]!)).toMatchObject({ actor: webClientId, target_type: 'grant', details: { route: 'token' } });

      // Several rounds, so that some of them really race (two requests in flight at once).
      for (let round = 0; round < 4; round++) {
        const { user, tokens } = await signedInTokens();
        const grantId = await grantOf(tokens.access_token);
        const results = await Promise.allSettled([oidc.refreshTokenGrant(web, tokens.refresh_token!), oidc.refreshTokenGrant(web, tokens.refresh_token!)]);
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(won, `round ${round}`).toHaveLength(1);
        expect(lost[0]?.reason, `round ${round}`).toMatchObject({ error: 'invalid_grant' });
        const winner = (won[0] as PromiseFulfilledResult<oidc.TokenEndpointResponse>).value;

        const entries = await grantRevokedEntries(grantId);
        expect(entries.map(entryShape), `round ${round}`).toEqual([entryShape(expected[0]!)]);
        // The grant has ended: the old and the new tokens are all dead.
        for (const token of [tokens.access_token, winner.access_token]) {
          expect((await oidc.tokenIntrospection(web, token)).active, `round ${round}`).toBe(false);
          await expect(oidc.fetchUserInfo(web, token, String(user.id))).rejects.toThrow();
        }
        for (const token of [tokens.refresh_token!, winner.refresh_token!]) {
          expect(await oauthError(oidc.refreshTokenGrant(web, token)), `round ${round}`).toBe('invalid_grant');
        }
      }
    });
  });

  describe('/o/token/revocation ends what was revoked', () => {
    it('revoking an access token ends that access token only: the refresh token and the grant go on', async () => {
      const { user, tokens } = await signedInTokens();
      const other = await oidc.refreshTokenGrant(web, tokens.refresh_token!);
      await oidc.tokenRevocation(web, tokens.access_token, { token_type_hint: 'access_token' });

      expect((await oidc.tokenIntrospection(web, tokens.access_token)).active).toBe(false);
      await expect(oidc.fetchUserInfo(web, tokens.access_token, String(user.id))).rejects.toThrow();
      // Another access token of the same grant still works, and so does the refresh token.
      expect((await oidc.fetchUserInfo(web, other.access_token, String(user.id))).sub).toBe(String(user.id));
      const refreshed = await oidc.refreshTokenGrant(web, other.refresh_token!);
      expect(refreshed.access_token).toMatch(OPAQUE_TOKEN);
      expect((await oidc.tokenIntrospection(web, refreshed.access_token)).active).toBe(true);
      expect(await knex()('audit_events').where({ event: 'grant.revoked', target_id: await grantOf(refreshed.access_token) })).toEqual([]);
    });

    it('revoking a refresh token ends the grant: its access tokens and refresh token die', async () => {
      const { user, tokens } = await signedInTokens();
      const grantId = await grantOf(tokens.access_token);
      await oidc.tokenRevocation(web, tokens.refresh_token!, { token_type_hint: 'refresh_token' });

      expect(await oauthError(oidc.refreshTokenGrant(web, tokens.refresh_token!))).toBe('invalid_grant');
      expect((await oidc.tokenIntrospection(web, tokens.access_token)).active).toBe(false);
      await expect(oidc.fetchUserInfo(web, tokens.access_token, String(user.id))).rejects.toThrow();
      expect((await grantRevokedEntries(grantId)).map(entryShape)).toEqual([
        expect.objectContaining({ actor: webClientId, target_type: 'grant', details: { route: 'revocation' } }),
      ]);
    });
  });

  describe('a copy of the database holds no credential', () => {
    it('stores no token, code or cookie value that a client or browser received, in any column or payload', async () => {
      const user = await makeUser(fx.server.latchkey);
      /** Every value handed out, by what it is. */
      const handedOut = new Map<string, Set<string>>();
      const note = (kind: string, value: string | undefined | null) => {
        if (!value) return;
        if (!handedOut.has(kind)) handedOut.set(kind, new Set());
        handedOut.get(kind)!.add(value);
      };
      /** Rows that must still be there, keyed by the digest of what was handed out. */
      const live: Array<{ model: string; value: string }> = [];

      // Authorization code with PKCE, through a pushed authorization request (RFC 9126).
      const agent = new RecordingAgent();
      const { codeVerifier, state } = await authorizationRequest(web);
      const pushedUrl = await oidc.buildAuthorizationUrlWithPAR(web, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid offline_access',
        prompt: 'consent',
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
        state,
      });
      note('request_uri', pushedUrl.searchParams.get('request_uri')?.split(':').pop());
      let { response, url } = await agent.follow(pushedUrl, (u) => u.href.startsWith(REDIRECT_URI));
      for (let step = 0; step < 3 && !url.href.startsWith(REDIRECT_URI); step++) {
        const html = await response.text();
        const form = html.includes('/login"') ? formOf(html, '/login') : formOf(html, '/confirm');
        const fields: Record<string, string> = html.includes('/login"') ? { username: user.username, password: PASSWORD } : { decision: 'allow' };
        const posted = await agent.postForm(new URL(form.action, url), { csrf: form.csrf, ...fields });
        ({ response, url } = await agent.follow(new URL(posted.headers.get('location')!, url), (u) => u.href.startsWith(REDIRECT_URI)));
      }
      note('authorization code', url.searchParams.get('code'));
      const tokens = await oidc.authorizationCodeGrant(web, url, { pkceCodeVerifier: codeVerifier, expectedState: state });
      note('access token', tokens.access_token);
      note('refresh token', tokens.refresh_token);
      const rotated = await oidc.refreshTokenGrant(web, tokens.refresh_token!);
      note('access token', rotated.access_token);
      note('refresh token', rotated.refresh_token);
      live.push({ model: 'AccessToken', value: rotated.access_token }, { model: 'RefreshToken', value: rotated.refresh_token! });

      // Client credentials.
      const machine = await oidc.clientCredentialsGrant(web, { scope: '' });
      note('client credentials token', machine.access_token);
      live.push({ model: 'ClientCredentials', value: machine.access_token });

      // The device flow, approved in the same browser (so by its login session).
      const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid offline_access' });
      note('device code', device.device_code);
      note('user code', device.user_code);
      note('user code', normalUserCode(device.user_code));
      expect(await approveDevice(fx.server.issuer, fx.server.url, agent, device.user_code, user.username)).toContain('Device connected');
      const deviceTokens = await oidc.pollDeviceAuthorizationGrant(tv, { ...device, interval: 0 });
      note('access token', deviceTokens.access_token);
      note('refresh token', deviceTokens.refresh_token);
      live.push({ model: 'DeviceCode', value: device.device_code }, { model: 'RefreshToken', value: deviceTokens.refresh_token! });

      // Dynamic registration (RFC 7591) and management (RFC 7592, which rotates the token).
      const iat = await new fx.server.latchkey.host.provider.InitialAccessToken({ policies: [REGISTRATION_POLICY] }).save();
      note('initial access token', iat);
      live.push({ model: 'InitialAccessToken', value: iat });
      const registered = await callApi(fx.server.url, 'POST', `${fx.server.issuer}/reg`, {
        token: iat,
        json: { client_name: 'Registered', redirect_uris: ['https://app.example.com/cb'], grant_types: ['authorization_code'], response_types: ['code'] },
      });
      expect(registered.status, registered.text).toBe(201);
      note('registration access token', registered.json['registration_access_token'] as string);
      note('client secret', registered.json['client_secret'] as string);
      const read = await callApi(fx.server.url, 'GET', String(registered.json['registration_client_uri']), { token: registered.json['registration_access_token'] as string });
      expect(read.status, read.text).toBe(200);
      const rotatedRat = (read.json['registration_access_token'] as string | undefined) ?? (registered.json['registration_access_token'] as string);
      note('registration access token', rotatedRat);
      live.push({ model: 'RegistrationAccessToken', value: rotatedRat });

      // Every cookie the provider set: the login session, the interactions, their signatures.
      for (const [name, values] of agent.cookieValues) for (const value of values) note(`cookie ${name}`, value);
      const sessionCookie = [...(agent.cookieValues.get('_session') ?? [])].pop();
      expect(sessionCookie, 'the browser holds a login session').toEqual(expect.any(String));
      live.push({ model: 'Session', value: sessionCookie! });
      expect([...handedOut.keys()].filter((k) => k.startsWith('cookie _interaction')).length, 'interaction cookies were seen').toBeGreaterThan(0);

      // What the database holds: the rows are there, under digests, and nothing handed out.
      for (const { model, value } of live) {
        expect(await knex()('oidc_payloads').where({ model, id: secretDigest(value) }).first(), `${model} row`).toBeDefined();
      }
      const rows = await storedRows(knex());
      const clients = ((await knex()('clients').select()) as unknown[]).map((row) => JSON.stringify(row));
      for (const [kind, values] of handedOut) {
        for (const value of values) {
          for (const row of rows) expect(row.includes(value), `${kind} ${value} in ${row.slice(0, 300)}`).toBe(false);
          for (const row of clients) expect(row.includes(value), `${kind} ${value} in a clients row`).toBe(false);
        }
      }
    });
  });
});

describe.each(BACKENDS)('tokens stored before the upgrade keep working after it (%s)', (backend) => {
  let db: TestDatabase;
  let running: RunningLatchkey | undefined;
  afterAll(async () => {
    await running?.close(1000);
    await db?.drop();
  });

  it('re-keys rows of the previous version by digest, and their tokens, codes and session work over HTTP', async () => {
    db = await freshDatabase(backend);
    const port = await freePort();
    const env = { PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}` };
    running = await startOnDatabase(db, env);
    const made = await makeClient(running.latchkey, { name: 'Web', grantTypes: ['authorization_code', 'refresh_token'] });
    const device = await makeClient(running.latchkey, { name: 'TV', isPublic: true, redirectUris: [], grantTypes: [DEVICE_CODE] });
    const user = await makeUser(running.latchkey);
    let web = await discover(running.issuer, made.client.clientId, made.clientSecret);
    let tv = await discover(running.issuer, device.client.clientId, null);
    const agent = new RecordingAgent();
    const { tokens } = await loginAndExchange(web, agent, { username: user.username, password: PASSWORD }, { scope: 'openid offline_access', prompt: 'consent' });
    const pending = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid' });
    const sessionCookie = [...(agent.cookieValues.get('_session') ?? [])].pop()!;
    // Someone else is at the login page when the upgrade comes: an Interaction in flight.
    const latecomer = new UserAgent();
    const started = await authorizationRequest(web, { scope: 'openid' });
    const atLogin = await latecomer.follow(started.url, (u) => u.href.startsWith(REDIRECT_URI));
    expect(atLogin.url.pathname).toMatch(/^\/interaction\/[\w-]+$/);
    const interactionUid = atLogin.url.pathname.split('/').pop()!;
    await running.close(1000);
    running = undefined;

    // The database as the previous version left it: these rows keyed by their values, the
    // value in the payload as `jti`, the user code in the clear; no created_at column; the
    // migration not applied. (Rows whose values this test never saw are dropped: they cannot
    // be turned back.)
    const known = [
      { model: 'AccessToken', value: tokens.access_token },
      { model: 'RefreshToken', value: tokens.refresh_token! },
      { model: 'Session', value: sessionCookie },
      { model: 'DeviceCode', value: pending.device_code, userCode: normalUserCode(pending.user_code) },
      { model: 'Interaction', value: interactionUid },
    ];
    const knex = (await import('../../src/storage/knex.js')).openDatabase((await import('../../src/config.js')).loadConfig({ DATABASE_URL: db.url }).database);
    try {
      for (const { model, value, userCode } of known) {
        const row = await knex('oidc_payloads').where({ model, id: secretDigest(value) }).first();
        expect(row, model).toBeDefined();
        const payload: Record<string, unknown> = { ...(JSON.parse(String(row.payload)) as Record<string, unknown>), jti: value, ...(userCode ? { userCode } : {}) };
        if (typeof payload['returnTo'] === 'string') payload['returnTo'] = payload['returnTo'].replace('{uid}', value);
        await knex('oidc_payloads')
          .where({ model, id: row.id })
          .update({ id: value, payload: JSON.stringify(payload), ...(userCode ? { user_code: userCode } : {}) });
      }
      await knex('oidc_payloads')
        .whereNotIn('model', ['Grant', 'ReplayDetection'])
        .whereNotIn('id', known.map((k) => k.value))
        .delete();
      await knex('knex_migrations').where({ name: '20261207001000_hashed_payload_ids' }).delete();
      await hashedPayloadIds.down(knex);
      expect(await knex('oidc_payloads').where({ model: 'AccessToken', id: tokens.access_token }).first()).toBeDefined();
    } finally {
      await knex.destroy();
    }

    // The upgrade: start the new version on that database (it migrates), and use everything.
    running = await startOnDatabase(db, env);
    await flushStaleConnections(`${running.issuer}/.well-known/openid-configuration`);
    web = await discover(running.issuer, made.client.clientId, made.clientSecret);
    tv = await discover(running.issuer, device.client.clientId, null);
    expect((await oidc.fetchUserInfo(web, tokens.access_token, String(user.id))).sub).toBe(String(user.id));
    const refreshed = await oidc.refreshTokenGrant(web, tokens.refresh_token!);
    expect(refreshed.access_token).toMatch(OPAQUE_TOKEN);
    // The login session: a new authorization goes straight back to the client.
    const again = await authorizationRequest(web, { prompt: 'none', scope: 'openid' });
    const back = await agent.follow(again.url, (u) => u.href.startsWith(REDIRECT_URI));
    expect(back.url.searchParams.get('code'), back.url.href).toMatch(OPAQUE_TOKEN);
    // The device code is still pending, and the person can still enter its user code.
    expect(await pollOnce(running.issuer, device.client.clientId, pending.device_code)).toBe('authorization_pending');
    expect(await approveDevice(running.issuer, running.url, agent, pending.user_code, user.username)).toContain('Device connected');
    expect(await pollOnce(running.issuer, device.client.clientId, pending.device_code)).toBe('ok');
    // The person at the login page signs in and the client gets its code.
    const page = await latecomer.fetch(new URL(atLogin.url.pathname, running.url));
    const login = formOf(await page.text(), '/login');
    const posted = await latecomer.postForm(new URL(login.action, atLogin.url), { csrf: login.csrf, username: user.username, password: PASSWORD });
    expect(posted.status).toBe(303);
    let landed = await latecomer.follow(new URL(posted.headers.get('location')!, running.url), (u) => u.href.startsWith(REDIRECT_URI));
    if (!landed.url.href.startsWith(REDIRECT_URI)) {
      const consent = formOf(await landed.response.text(), '/confirm');
      const allowed = await latecomer.postForm(new URL(consent.action, landed.url), { csrf: consent.csrf, decision: 'allow' });
      landed = await latecomer.follow(new URL(allowed.headers.get('location')!, landed.url), (u) => u.href.startsWith(REDIRECT_URI));
    }
    const late = await oidc.authorizationCodeGrant(web, landed.url, { pkceCodeVerifier: started.codeVerifier, expectedState: started.state, expectedNonce: started.nonce });
    expect(late.access_token).toMatch(OPAQUE_TOKEN);

    const rows = await storedRows(running.latchkey.storage.knex);
    for (const { value } of known) for (const row of rows) expect(row.includes(value), `${value} in ${row.slice(0, 200)}`).toBe(false);
  });
});
