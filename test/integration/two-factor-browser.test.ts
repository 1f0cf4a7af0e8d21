import path from 'node:path';
import * as oidc from 'openid-client';
import { beforeAll, expect, it } from 'vitest';
import { MFA_ACR } from '../../src/oidc/acr.js';
import { SCREENSHOTS } from '../helpers/chromium.js';
import { authorizationRequest, discover, makeClient, makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { codeAt, enrollOverRest, wrongCode } from '../helpers/two-factor.js';
import { describeInChromium } from '../helpers/fixture.js';

const CLIENT_NAME = 'MFA Browser App';

/** The second login step (two-factor code) in real headless Chromium, per storage backend. */
describeInChromium('two-factor login in headless Chromium', (fx, tab) => {
  let config: oidc.Configuration;

  beforeAll(async () => {
    const made = await makeClient(fx.server.latchkey, { name: CLIENT_NAME });
    config = await discover(fx.server.issuer, made.client.clientId, made.clientSecret ?? '');
  });

  it('asks for the code after the password, refuses a wrong one, and signs in with the right one', async () => {
    const user = await makeUser(fx.server.latchkey);
    const { secret } = await enrollOverRest(fx.server.url, user.username);
    const request = await authorizationRequest(config);

    // A CSP violation or a missing stylesheet shows up as a console error.
    const consoleErrors: string[] = [];
    tab.page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(`${m.text()} ${m.location().url}`);
    });
    tab.page.on('pageerror', (e) => void consoleErrors.push(e.message));

    await tab.page.goto(request.url.href);
    await tab.page.fill('input[name=username]', user.username);
    await tab.page.fill('input[name=password]', PASSWORD);
    await Promise.all([tab.page.waitForURL(/\/interaction\/[^/]+$/), tab.page.click('button[type=submit]')]);

    await expect.poll(() => tab.page.locator('h1').textContent()).toBe('Two-step verification');
    expect(await tab.page.locator('.lead strong').textContent()).toBe(CLIENT_NAME);
    expect(await tab.page.locator('input[name=password]').count()).toBe(0);
    const codeInput = tab.page.locator('input[name=code]');
    expect(await codeInput.isVisible()).toBe(true);
    expect(await codeInput.getAttribute('autocomplete')).toBe('one-time-code');
    // The field has the focus: the person can type the code at once.
    expect(await tab.page.evaluate('document.activeElement && document.activeElement.name')).toBe('code');
    await tab.page.screenshot({ path: path.join(SCREENSHOTS, `two-factor-${fx.backend}.png`), fullPage: true });
    expect(consoleErrors).toEqual([]);

    await codeInput.fill(wrongCode(secret));
    const [wrong] = await Promise.all([
      tab.page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/two-factor')),
      tab.page.click('button[type=submit]'),
    ]);
    expect(wrong.status()).toBe(401);
    await tab.page.waitForLoadState();
    const alert = tab.page.getByRole('alert');
    expect(await alert.textContent()).toBe('That code is not valid. Enter the current code from your app, or an unused recovery code.');
    expect(await alert.isVisible()).toBe(true);
    expect(await tab.page.inputValue('input[name=code]')).toBe('');
    await tab.page.screenshot({ path: path.join(SCREENSHOTS, `two-factor-error-${fx.backend}.png`), fullPage: true });

    await tab.page.fill('input[name=code]', codeAt(secret, 1));
    await Promise.all([tab.page.waitForURL(/\/interaction\/[^/]+$/), tab.page.click('button[type=submit]')]);
    await tab.page.locator('button[name=decision][value=allow]').waitFor();
    expect(await tab.page.locator('h1').textContent()).toBe('Allow access?');

    const [callback] = await Promise.all([
      tab.page.waitForRequest((r) => r.url().startsWith(REDIRECT_URI)),
      tab.page.click('button[name=decision][value=allow]'),
    ]);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(callback.url()), {
      pkceCodeVerifier: request.codeVerifier,
      expectedState: request.state,
      expectedNonce: request.nonce,
      idTokenExpected: true,
    });
    expect(tokens.claims()?.sub).toBe(String(user.id));
    expect(tokens.claims()?.amr).toEqual(['pwd', 'otp']);
    expect(tokens.claims()?.acr).toBe(MFA_ACR);
  });
});
