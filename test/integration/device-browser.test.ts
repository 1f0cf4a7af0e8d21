import path from 'node:path';
import * as oidc from 'openid-client';
import { afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { PASSWORD_ACR } from '../../src/oidc/acr.js';
import { consoleErrorsOf, SCREENSHOTS } from '../helpers/chromium.js';
import { discover, makeClient, makeUser, PASSWORD } from '../helpers/rp.js';
import { describeInChromium } from '../helpers/fixture.js';
import { OPAQUE_TOKEN } from '../helpers/shapes.js';

const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
const CLIENT_NAME = 'Living-room TV';

/**
 * RFC 8628 end to end with a real browser: the device asks for a code and polls through
 * openid-client while a person, in headless Chromium, enters the code, confirms, signs in
 * and allows.
 */
describeInChromium('device authorization grant in headless Chromium', (fx, tab, browser) => {
  let config: oidc.Configuration;
  let consoleErrors: string[];
  let stopPolling: AbortController;

  beforeAll(async () => {
    const made = await makeClient(fx.server.latchkey, { name: CLIENT_NAME, isPublic: true, redirectUris: [], grantTypes: [DEVICE_CODE, 'refresh_token'] });
    config = await discover(fx.server.issuer, made.client.clientId, null);
  });

  beforeEach(async () => {
    stopPolling = new AbortController();
    consoleErrors = consoleErrorsOf(tab.page);
  });
  afterEach(async () => {
    stopPolling.abort();
  });

  const shot = (name: string) => tab.page.screenshot({ path: path.join(SCREENSHOTS, `${name}-${fx.backend}.png`), fullPage: true });
  const heading = () => tab.page.locator('h1').textContent();

  /** Types a code on the entry page and submits it; the answer comes back at the same URL. */
  async function enterCode(code: string): Promise<number> {
    await tab.page.fill('input[name=user_code]', code);
    const [response] = await Promise.all([
      tab.page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/o/device'),
      tab.page.click('button[form="op.deviceInputForm"]'),
    ]);
    await tab.page.waitForLoadState();
    return response.status();
  }

  it('lets a person approve the device in the browser while the device polls for tokens', async () => {
    const user = await makeUser(fx.server.latchkey);
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid profile offline_access' });
    const polling = oidc.pollDeviceAuthorizationGrant(config, device, undefined, { signal: stopPolling.signal });
    polling.catch(() => undefined); // awaited below; a failed test must not leave an unhandled rejection

    const start = await tab.page.goto(device.verification_uri);
    expect(start?.status()).toBe(200);
    expect(start?.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(await heading()).toBe('Connect a device');
    expect(await tab.page.locator('html').getAttribute('lang')).toBe('en');
    // The code field has the focus, so a person can type at once.
    expect(await tab.page.locator('input[name=user_code]').evaluate((input) => input === input.ownerDocument.activeElement)).toBe(true);
    await shot('device-input');

    // Typed the way people type it: lower case, a space instead of the dash.
    expect(await enterCode(device.user_code.toLowerCase().replace('-', ' '))).toBe(200);
    expect(await heading()).toBe(`Connect ${CLIENT_NAME}?`);
    expect(await tab.page.locator('.user-code code').textContent()).toBe(device.user_code);
    await shot('device-confirm');

    await Promise.all([tab.page.waitForURL(/\/interaction\/[^/]+$/), tab.page.click('button.primary[form="op.deviceConfirmForm"]')]);
    await expect.poll(heading).toBe('Sign in');
    expect(await tab.page.locator('.lead strong').textContent()).toBe(CLIENT_NAME);
    await tab.page.fill('input[name=username]', user.username);
    await tab.page.fill('input[name=password]', PASSWORD);
    await tab.page.click('button[type=submit]');

    await tab.page.locator('button[name=decision][value=allow]').waitFor();
    expect(await heading()).toBe('Allow access?');
    await tab.page.click('button[name=decision][value=allow]');

    await tab.page.locator('h1', { hasText: 'Device connected' }).waitFor();
    expect(await tab.page.locator('.lead').textContent()).toBe(`${CLIENT_NAME} is now signed in. You can return to your device and close this window.`);
    await shot('device-success');
    expect(consoleErrors).toEqual([]);

    const tokens = await polling;
    expect(tokens.claims()?.sub).toBe(String(user.id));
    expect(tokens.claims()?.acr).toBe(PASSWORD_ACR);
    expect(tokens.refresh_token).toMatch(OPAQUE_TOKEN);
    expect((await oidc.fetchUserInfo(config, tokens.access_token, String(user.id))).preferred_username).toBe(user.username);
  });

  it('shows the error message for a wrong code, and the device goes on waiting', async () => {
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    await tab.page.goto(`${fx.server.issuer}/device`);
    expect(await enterCode('BBBB-BBBB')).toBe(200);

    const alert = tab.page.getByRole('alert');
    expect(await alert.textContent()).toBe('That code is not valid, or it has expired or been used. Check the code and try again.');
    expect(await alert.isVisible()).toBe(true);
    expect(await heading()).toBe('Connect a device');
    expect(await tab.page.locator('input[name=user_code]').isVisible()).toBe(true);
    await shot('device-wrong-code');
    expect(consoleErrors).toEqual([]);

    // One poll: still authorization_pending, no tokens.
    const response = await fetch(`${fx.server.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: DEVICE_CODE, device_code: device.device_code, client_id: config.clientMetadata().client_id }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe('authorization_pending');
  });

  it('shows the device pages in French for a French browser', async () => {
    const french = await browser().newContext({ locale: 'fr-FR' });
    try {
      const frenchPage = await french.newPage();
      await frenchPage.goto(`${fx.server.issuer}/device`);
      expect(await frenchPage.locator('html').getAttribute('lang')).toBe('fr');
      expect(await frenchPage.locator('h1').textContent()).toBe('Connecter un appareil');
      expect(await frenchPage.getAttribute('input[name=user_code]', 'placeholder')).toBe('Saisir le code');
      await frenchPage.screenshot({ path: path.join(SCREENSHOTS, `device-input-fr-${fx.backend}.png`), fullPage: true });
    } finally {
      await french.close();
    }
  });
});
