import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserAgent } from '../helpers/browserless.js';
import { BACKENDS } from '../helpers/env.js';
import { discover, loginAndExchange, makeClient, makeUser, PASSWORD, POST_LOGOUT_URI } from '../helpers/rp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** A relying party's back-channel logout endpoint: records every logout token it receives. */
async function receiver() {
  const received: string[] = [];
  const waiters: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      if (req.method === 'POST' && token) received.push(token);
      res.writeHead(200).end();
      waiters.splice(0).forEach((wake) => wake());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel`,
    received,
    next: () => new Promise<void>((resolve, reject) => {
      waiters.push(resolve);
      setTimeout(() => reject(new Error('no logout token arrived')), 10_000).unref();
    }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe.each(BACKENDS)('OIDC Back-Channel Logout (%s)', (backend) => {
  let server: TestServer;
  let rp: Awaited<ReturnType<typeof receiver>>;
  let config: oidc.Configuration;
  let clientId: string;
  beforeAll(async () => {
    // The receiver listens on loopback, which the provider refuses to call unless allowed.
    server = await startTestServer(backend, { ALLOW_PRIVATE_NETWORK_CALLS: '1' });
    rp = await receiver();
    const made = await makeClient(server.latchkey, { backchannelLogoutUri: rp.url });
    clientId = made.client.clientId;
    config = await discover(server.issuer, clientId, made.clientSecret);
  });
  afterAll(async () => {
    await server?.stop();
    await rp?.close();
  });

  it('does not call special-use addresses unless the operator allows it (SSRF guard)', async () => {
    const guarded = await startTestServer(backend);
    try {
      const made = await makeClient(guarded.latchkey, { backchannelLogoutUri: rp.url });
      const guardedConfig = await discover(guarded.issuer, made.client.clientId, made.clientSecret);
      const user = await makeUser(guarded.latchkey);
      const agent = new UserAgent();
      const { tokens } = await loginAndExchange(guardedConfig, agent, { username: user.username, password: PASSWORD });
      const before = rp.received.length;
      const end = oidc.buildEndSessionUrl(guardedConfig, { id_token_hint: tokens.id_token! });
      const page = await (await agent.fetch(end)).text();
      const action = /<form id="op.logoutForm" method="post" action="([^"]+)"/.exec(page)![1]!;
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(page)![1]!;
      // Logout itself still succeeds; only the call to the loopback receiver is refused.
      expect((await agent.postForm(new URL(action, end), { xsrf, logout: 'yes' })).status).toBe(303);
      await new Promise((r) => setTimeout(r, 300));
      expect(rp.received.length).toBe(before);
    } finally {
      await guarded.stop();
    }
  });

  it('is advertised', () => {
    const meta = config.serverMetadata();
    expect(meta['backchannel_logout_supported']).toBe(true);
    expect(meta['backchannel_logout_session_supported']).toBe(true);
  });

  it('sends the client a signed logout token when the person signs out', async () => {
    const user = await makeUser(server.latchkey);
    const agent = new UserAgent();
    const { tokens } = await loginAndExchange(config, agent, { username: user.username, password: PASSWORD });
    const sid = tokens.claims()?.['sid'];
    expect(typeof sid).toBe('string');

    const arrived = rp.next();
    const end = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT_URI });
    const page = await (await agent.fetch(end)).text();
    const action = /<form id="op.logoutForm" method="post" action="([^"]+)"/.exec(page)![1]!;
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(page)![1]!;
    expect((await agent.postForm(new URL(action, end), { xsrf, logout: 'yes' })).status).toBe(303);
    await arrived;

    const token = rp.received.at(-1)!;
    const jwks = jose.createRemoteJWKSet(new URL(`${server.issuer}/jwks`));
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, { issuer: server.issuer, audience: clientId, typ: 'logout+jwt' });
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload.sub).toBe(String(user.id));
    expect(payload['sid']).toBe(sid);
    expect(payload['events']).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
    expect(payload['nonce']).toBeUndefined();
  });
});
