import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserAgent } from '../helpers/browserless.js';
import { BACKENDS } from '../helpers/env.js';
import { discover, loginAndExchange, makeClient, makeUser, PASSWORD } from '../helpers/rp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe.each(BACKENDS)('OIDC flows through openid-client (%s)', (backend) => {
  let server: TestServer;
  let config: oidc.Configuration;
  let clientId: string;
  let clientSecret: string;

  beforeAll(async () => {
    server = await startTestServer(backend);
    const made = await makeClient(server.latchkey, { grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'] });
    clientId = made.client.clientId;
    clientSecret = made.clientSecret ?? '';
    config = await discover(server.issuer, clientId, clientSecret);
  });
  afterAll(async () => server?.stop());

  it('publishes discovery with the issuer under /o', () => {
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(`${server.url}/o`);
    expect(meta.authorization_endpoint).toBe(`${server.url}/o/auth`);
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
    expect(meta.response_types_supported).toEqual(['code']);
  });

  it('signs in through the login and consent pages and validates the ID token', async () => {
    const user = await makeUser(server.latchkey);
    const { tokens } = await loginAndExchange(config, new UserAgent(), { username: user.username, password: PASSWORD });
    const claims = tokens.claims();
    expect(claims?.sub).toBe(String(user.id));
    expect(claims?.iss).toBe(server.issuer);
    expect(tokens.access_token).toBeTruthy();
    expect(tokens.refresh_token).toBeTruthy();

    const info = await oidc.fetchUserInfo(config, tokens.access_token, String(user.id));
    expect(info).toMatchObject({
      sub: String(user.id),
      preferred_username: user.username,
      name: 'Ada Lovelace',
      given_name: 'Ada',
      family_name: 'Lovelace',
      email: user.email,
      email_verified: true,
    });
    expect(typeof info['updated_at']).toBe('number');
  });
});
