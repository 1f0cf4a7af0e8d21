import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeClient, REDIRECT_URI } from '../helpers/rp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('behind a TLS-terminating proxy (TRUST_PROXY=1, https PUBLIC_URL)', () => {
  let server: TestServer;
  let clientId: string;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { PUBLIC_URL: 'https://id.example.test', TRUST_PROXY: '1' });
    clientId = (await makeClient(server.latchkey)).client.clientId;
  });
  afterAll(async () => server?.stop());

  const local = (path: string) => `http://127.0.0.1:${server.port}${path}`;
  const viaProxy = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'id.example.test' };

  it('advertises https endpoints and sends HSTS', async () => {
    const response = await fetch(local('/o/.well-known/openid-configuration'), { headers: viaProxy });
    const meta = (await response.json()) as Record<string, string>;
    expect(meta['issuer']).toBe('https://id.example.test/o');
    expect(meta['authorization_endpoint']).toBe('https://id.example.test/o/auth');
    expect(meta['token_endpoint']).toBe('https://id.example.test/o/token');
    expect(response.headers.get('strict-transport-security')).toContain('max-age=');
  });

  it('marks every cookie Secure, HttpOnly and SameSite', async () => {
    const params = new URLSearchParams({
      client_id: clientId,
      redirect_uri: REDIRECT_URI,
      response_type: 'code',
      scope: 'openid',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    });
    const auth = await fetch(local(`/o/auth?${params}`), { headers: viaProxy, redirect: 'manual' });
    expect(auth.status).toBe(303);
    const location = new URL(auth.headers.get('location')!, 'https://id.example.test');
    const page = await fetch(local(location.pathname), {
      headers: { ...viaProxy, cookie: auth.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ') },
    });
    expect(page.status).toBe(200);
    const cookies = [...auth.headers.getSetCookie(), ...page.headers.getSetCookie()];
    expect(cookies.length).toBeGreaterThan(0);
    for (const cookie of cookies) {
      expect(cookie.toLowerCase()).toContain('; secure');
      expect(cookie.toLowerCase()).toContain('; httponly');
      expect(cookie.toLowerCase()).toMatch(/; samesite=(lax|strict)/);
    }
  });
});
