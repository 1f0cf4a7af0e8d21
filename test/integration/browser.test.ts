import { consoleErrorsOf, SCREENSHOTS } from '../helpers/chromium.js';
import path from 'node:path';
import * as oidc from 'openid-client';
import { beforeAll, expect, it } from 'vitest';
import { authorizationRequest as rpAuthorizationRequest, discover, makeClient, makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { describeInChromium } from '../helpers/fixture.js';
import { OPAQUE_TOKEN } from '../helpers/shapes.js';

const CLIENT_NAME = 'Browser Test App';

/** The login flow once in real headless Chromium, per storage backend. */
describeInChromium('login in headless Chromium', (fx, tab) => {
  let config: oidc.Configuration;

  beforeAll(async () => {
    const made = await makeClient(fx.server.latchkey, { name: CLIENT_NAME });
    config = await discover(fx.server.issuer, made.client.clientId, made.clientSecret ?? '');
  });

  const authorizationRequest = () => rpAuthorizationRequest(config);

  it('signs in, consents and returns a code that openid-client exchanges', async () => {
    const user = await makeUser(fx.server.latchkey);
    const request = await authorizationRequest();

    const consoleErrors = consoleErrorsOf(tab.page);

    const response = await tab.page.goto(request.url.href);
    expect(response?.status()).toBe(200);
    expect(new URL(tab.page.url()).pathname).toMatch(/^\/interaction\/[^/]+$/);
    const headers = response?.headers() ?? {};
    expect(headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(headers['x-frame-options']).toBe('DENY');

    await expect.poll(() => tab.page.locator('h1').textContent()).toBe('Sign in');
    expect(await tab.page.getByText(CLIENT_NAME).isVisible()).toBe(true);
    await tab.page.screenshot({ path: path.join(SCREENSHOTS, `login-${fx.backend}.png`), fullPage: true });

    await tab.page.fill('input[name=username]', user.username);
    await tab.page.fill('input[name=password]', PASSWORD);
    await Promise.all([tab.page.waitForURL(/\/interaction\/[^/]+$/), tab.page.click('button[type=submit]')]);

    // Consent page: who is asking, and for what, in words.
    await tab.page.locator('button[name=decision][value=allow]').waitFor();
    expect(await tab.page.locator('h1').textContent()).toBe('Allow access?');
    expect(await tab.page.locator('.lead strong').textContent()).toBe(CLIENT_NAME);
    for (const description of [
      'Sign you in with your Latchkey account',
      'See your name and username',
      'See your email address and whether it is verified',
    ]) {
      expect(await tab.page.getByText(description, { exact: true }).isVisible(), description).toBe(true);
    }
    await tab.page.screenshot({ path: path.join(SCREENSHOTS, `consent-${fx.backend}.png`), fullPage: true });
    expect(consoleErrors).toEqual([]);

    // Nothing listens on the client's redirect URI. page.route() cannot answer it: Playwright
    // never routes the hops of a redirect chain (POST /confirm -> 303 /o/auth/:uid -> 303
    // callback), so the browser's own request to the callback is captured instead; it then
    // fails with ERR_CONNECTION_REFUSED, which does not matter here.
    const [callback] = await Promise.all([
      tab.page.waitForRequest((r) => r.url().startsWith(REDIRECT_URI)),
      tab.page.click('button[name=decision][value=allow]'),
    ]);
    const callbackUrl = new URL(callback.url());
    expect(callback.isNavigationRequest()).toBe(true);
    expect(callback.redirectedFrom()?.url().startsWith(`${fx.server.issuer}/auth/`)).toBe(true);
    expect(callbackUrl.searchParams.get('state')).toBe(request.state);
    expect(callbackUrl.searchParams.get('code')).toMatch(OPAQUE_TOKEN);

    // Every cookie Latchkey set in the browser is out of reach of scripts and not sent cross-site.
    const cookies = (await tab.context.cookies()).filter((c) => c.domain === new URL(fx.server.url).hostname);
    expect(cookies.map((c) => c.name)).toEqual(expect.arrayContaining(['_session', 'lk.csrf']));
    for (const cookie of cookies) {
      expect(cookie.httpOnly, `${cookie.name} httpOnly`).toBe(true);
      expect(['Lax', 'Strict'], `${cookie.name} sameSite`).toContain(cookie.sameSite);
    }

    const tokens = await oidc.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: request.codeVerifier,
      expectedState: request.state,
      expectedNonce: request.nonce,
      idTokenExpected: true,
    });
    expect(tokens.claims()?.sub).toBe(String(user.id));
    expect(tokens.claims()?.iss).toBe(fx.server.issuer);
  });

  it('shows the generic message after a wrong password and stays on the login page', async () => {
    const user = await makeUser(fx.server.latchkey);
    const request = await authorizationRequest();
    await tab.page.goto(request.url.href);
    const loginUrl = tab.page.url();

    await tab.page.fill('input[name=username]', user.username);
    await tab.page.fill('input[name=password]', 'not the password');
    const [response] = await Promise.all([
      tab.page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/login')),
      tab.page.click('button[type=submit]'),
    ]);
    expect(response.status()).toBe(401);
    await tab.page.waitForLoadState();

    const alert = tab.page.getByRole('alert');
    expect(await alert.textContent()).toBe('Invalid username or password.');
    expect(await alert.isVisible()).toBe(true);
    expect(await tab.page.locator('h1').textContent()).toBe('Sign in');
    expect(await tab.page.locator('input[name=password]').isVisible()).toBe(true);
    expect(tab.page.url()).toBe(`${loginUrl}/login`);
    // The username is kept, the password is not echoed back.
    expect(await tab.page.inputValue('input[name=username]')).toBe(user.username);
    expect(await tab.page.inputValue('input[name=password]')).toBe('');
    await tab.page.screenshot({ path: path.join(SCREENSHOTS, `login-error-${fx.backend}.png`), fullPage: true });
  });
});
