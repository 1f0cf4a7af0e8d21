/**
 * Account enumeration: an unknown username, a wrong password and an inactive account (even
 * with its right password) must look the same at every password door, in the answer and in
 * the time it takes (unknown users pay for a dummy bcrypt check).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type * as oidc from 'openid-client';
import { beforeAll, describe, expect, it } from 'vitest';
import type { User } from '../../src/storage/users.js';
import { formOf, UserAgent } from '../helpers/browserless.js';
import { readAnswer, type Answer } from '../helpers/http.js';
import { authorizationRequest, discover, makeClient, makeUser, PASSWORD } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';

const WRONG = 'certainly not the passphrase';
type Door = 'login page' | '/api/token/' | '/users/login/' | 'password grant';
const DOORS: Door[] = ['login page', '/api/token/', '/users/login/', 'password grant'];
type Case = 'unknown user' | 'wrong password' | 'inactive user';
const CASES: Case[] = ['unknown user', 'wrong password', 'inactive user'];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

// Generous limits (testEnv's defaults) so that nothing here gets locked.
describeOnBackends('no account enumeration at the password doors (%s)', { LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000', LOGIN_MAX_FAILURES_PER_IP: '100000' }, (fx) => {
  let webConfig: oidc.Configuration;
  let basic: string;
  let active: User;
  let inactive: User;

  beforeAll(async () => {
    const web = await makeClient(fx.server.latchkey, { name: 'Enumeration web app' });
    webConfig = await discover(fx.server.issuer, web.client.clientId, web.clientSecret);
    const legacy = await makeClient(fx.server.latchkey, { name: 'Enumeration legacy app', grantTypes: ['password', 'refresh_token'], redirectUris: [] });
    basic = `Basic ${Buffer.from(`${legacy.client.clientId}:${legacy.clientSecret}`).toString('base64')}`;
    active = await makeUser(fx.server.latchkey);
    inactive = await makeUser(fx.server.latchkey, { isActive: false });
  });

  /** Username and password for one case; unknown names are fresh each time. */
  function credentials(which: Case): { username: string; password: string } {
    if (which === 'unknown user') return { username: `nobody_${randomBytes(5).toString('hex')}`, password: PASSWORD };
    if (which === 'wrong password') return { username: active.username, password: WRONG };
    // The inactive account's RIGHT password: it must not tell the account exists.
    return { username: inactive.username, password: PASSWORD };
  }

  /**
   * Prepares one attempt at a door (for the login page: a fresh interaction) and returns
   * the request to time, so that only the password check itself is measured.
   */
  async function prepare(door: Door, username: string, password: string): Promise<() => Promise<Response>> {
    switch (door) {
      case 'login page': {
        const agent = new UserAgent();
        const { url } = await authorizationRequest(webConfig);
        const { response, url: at } = await agent.follow(url);
        const form = formOf(await response.text(), '/login');
        return () => agent.postForm(new URL(form.action, at), { csrf: form.csrf, username, password });
      }
      case '/api/token/':
        return () =>
          fetch(`${fx.server.url}/api/token/`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: 'application/json' },
            body: JSON.stringify({ username, password }),
          });
      case '/users/login/':
        return () =>
          fetch(`${fx.server.url}/users/login/`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
            body: new URLSearchParams({ username, password }).toString(),
          });
      case 'password grant':
        return () =>
          fetch(`${fx.server.issuer}/token`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: basic },
            body: new URLSearchParams({ grant_type: 'password', username, password, scope: 'openid' }).toString(),
          });
    }
  }

  async function attempt(door: Door, which: Case): Promise<{ answer: Answer; ms: number }> {
    const { username, password } = credentials(which);
    const send = await prepare(door, username, password);
    const started = performance.now();
    const response = await send();
    const answer = await readAnswer(response);
    return { answer, ms: performance.now() - started };
  }

  /** What a person or client can compare: status, and the body (the page's message part). */
  function visible(door: Door, answer: Answer): unknown {
    if (door === 'login page') {
      return { status: answer.status, message: /<p class="alert" role="alert">([^<]*)<\/p>/.exec(answer.text)?.[1] ?? null };
    }
    return { status: answer.status, contentType: answer.headers.get('content-type'), body: answer.text };
  }

  describe.each(DOORS)('at the %s', (door) => {
    it('answers an unknown user, a wrong password and an inactive account identically', async () => {
      // Positive control: this door does sign the active user in.
      const ok = await readAnswer(await (await prepare(door, active.username, PASSWORD))());
      expect(ok.status, ok.text.slice(0, 300)).toBe(door === 'login page' ? 303 : 200);

      const seen = new Map<Case, unknown>();
      for (const which of CASES) {
        const { answer } = await attempt(door, which);
        expect(answer.status, `${which}: ${answer.text.slice(0, 300)}`).toBe(door === 'password grant' || door === '/users/login/' ? 400 : 401);
        expect(answer.text).not.toMatch(/access_token|"access"/);
        seen.set(which, visible(door, answer));
      }
      const reference = seen.get('wrong password');
      if (door === 'password grant') expect(reference).toMatchObject({ body: expect.stringContaining('"invalid_grant"') });
      if (door === 'login page') expect(reference).toMatchObject({ message: 'Invalid username or password.' });
      expect(seen.get('unknown user'), 'unknown user vs wrong password').toEqual(reference);
      expect(seen.get('inactive user'), 'inactive user vs wrong password').toEqual(reference);
    });

    it('takes as long for an unknown user as for a wrong password (a dummy hash runs)', async () => {
      // Warm-up: the pool's threads, connections, and the lazily made dummy hash.
      for (const which of CASES) await attempt(door, which);
      const times: Record<Case, number[]> = { 'unknown user': [], 'wrong password': [], 'inactive user': [] };
      // Interleaved, so that load from elsewhere hits every case alike.
      for (let round = 0; round < 7; round++) {
        for (const which of CASES) times[which].push((await attempt(door, which)).ms);
      }
      const unknown = median(times['unknown user']);
      const wrong = median(times['wrong password']);
      const inactiveMs = median(times['inactive user']);
      const report = `medians (ms): unknown ${unknown.toFixed(1)}, wrong ${wrong.toFixed(1)}, inactive ${inactiveMs.toFixed(1)}`;
      expect(unknown, report).toBeGreaterThanOrEqual(0.5 * wrong);
      expect(inactiveMs, report).toBeGreaterThanOrEqual(0.5 * wrong);
    });
  });
});
