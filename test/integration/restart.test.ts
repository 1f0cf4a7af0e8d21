import { freePort } from '../helpers/process.js';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunningLatchkey } from '../../src/start.js';
import { UserAgent } from '../helpers/browserless.js';
import { freshDatabase, type TestDatabase } from '../helpers/database.js';
import { BACKENDS } from '../helpers/env.js';
import { authorize, discover, loginAndExchange, makeClient, makeUser, PASSWORD } from '../helpers/rp.js';
import { startOnDatabase } from '../helpers/server.js';
import { ACCESS_TOKEN, OPAQUE_TOKEN } from '../helpers/shapes.js';

/**
 * fetch keeps idle keep-alive sockets to the old server on the same port; the first request
 * after the restart may pick one the old server closed ("other side closed"). Ask until a
 * fresh connection answers, so that noise never reaches the assertions.
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

describe.each(BACKENDS)('state survives a restart (%s)', (backend) => {
  let db: TestDatabase;
  let running: RunningLatchkey | undefined;
  afterAll(async () => {
    await running?.close(1000);
    await db?.drop();
  });

  it('keeps keys, sessions, tokens and clients across a restart', async () => {
    db = await freshDatabase(backend);
    const port = await freePort();
    const env = { PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}` };

    running = await startOnDatabase(db, env);
    const made = await makeClient(running.latchkey);
    const user = await makeUser(running.latchkey);
    let config = await discover(running.issuer, made.client.clientId, made.clientSecret);
    const agent = new UserAgent();
    const { tokens } = await loginAndExchange(config, agent, { username: user.username, password: PASSWORD });
    const jwksBefore = (await (await fetch(`${running.issuer}/jwks`)).json()) as jose.JSONWebKeySet;
    await running.close(1000);
    running = undefined;

    running = await startOnDatabase(db, env);
    await flushStaleConnections(`${running.url}/health`);
    config = await discover(running.issuer, made.client.clientId, made.clientSecret);
    const jwksAfter = (await (await fetch(`${running.issuer}/jwks`)).json()) as jose.JSONWebKeySet;
    expect(jwksAfter.keys.map((k) => k.kid).sort()).toEqual(jwksBefore.keys.map((k) => k.kid).sort());

    // The ID token issued before the restart still verifies against the published keys.
    const { payload } = await jose.jwtVerify(tokens.id_token!, jose.createLocalJWKSet(jwksAfter), { issuer: running.issuer });
    expect(payload.sub).toBe(String(user.id));

    // Access token, refresh token and the browser's login session all still work.
    expect((await oidc.fetchUserInfo(config, tokens.access_token, String(user.id))).sub).toBe(String(user.id));
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.access_token).toMatch(ACCESS_TOKEN);
    const sso = await authorize(config, agent, null, {}, { consent: 'skip' });
    expect(sso.callbackUrl.searchParams.get('code')).toMatch(OPAQUE_TOKEN);

    // Reuse detection holds across the restart too.
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});
