import { consoleErrorsOf, SCREENSHOTS } from '../helpers/chromium.js';
import path from 'node:path';
import { beforeEach, expect, it } from 'vitest';
import { UserAgent } from '../helpers/browserless.js';
import { discover, loginAndExchange, makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { describeInChromium } from '../helpers/fixture.js';
import { ACCESS_TOKEN, OPAQUE_TOKEN } from '../helpers/shapes.js';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** The admin pages in headless Chromium: sign in, register an application, and use it. */
describeInChromium('admin pages in headless Chromium', (fx, tab) => {
  let consoleErrors: string[] = [];

  beforeEach(async () => {
    consoleErrors = consoleErrorsOf(tab.page);
  });

  const shot = (name: string) => tab.page.screenshot({ path: path.join(SCREENSHOTS, `admin-${name}-${fx.backend}.png`), fullPage: true });

  /** Opens an admin page and checks it rendered (status 200, an h1, no console errors so far). */
  async function open(pathname: string, heading?: string | RegExp) {
    const response = await tab.page.goto(`${fx.server.url}${pathname}`);
    expect(response?.status(), pathname).toBe(200);
    if (heading) expect(await tab.page.locator('h1').textContent(), pathname).toMatch(heading);
  }

  it('lets staff register an application whose shown credentials complete a sign-in', async () => {
    const admin = await makeUser(fx.server.latchkey, { isStaff: true, username: `admin_${fx.backend}`, firstName: 'Alex', lastName: 'Admin' });
    for (const [first, last] of [
      ['Ada', 'Lovelace'],
      ['Grace', 'Hopper'],
      ['Katherine', 'Johnson'],
      ['<script>alert(1)</script>', 'Escaped'],
    ] as const) {
      await makeUser(fx.server.latchkey, { firstName: first, lastName: last });
    }
    const endUser = await makeUser(fx.server.latchkey, { firstName: 'End', lastName: 'User' });

    // Sign in at /admin/: the login page, then back to the dashboard.
    await tab.page.goto(`${fx.server.url}/admin/`);
    expect(new URL(tab.page.url()).pathname).toMatch(/^\/interaction\//);
    await tab.page.fill('input[name=username]', admin.username);
    await tab.page.fill('input[name=password]', PASSWORD);
    await Promise.all([tab.page.waitForURL(`${fx.server.url}/admin/`), tab.page.click('button[type=submit]')]);
    expect(await tab.page.locator('h1').textContent()).toBe('Administration');
    await shot('dashboard');

    // Users: list (desktop and phone), create through the form, edit, password, delete confirmation.
    await open('/admin/users', 'Users');
    expect(await tab.page.getByText('<script>alert(1)</script> Escaped', { exact: true }).isVisible()).toBe(true);
    await shot('users');
    await tab.page.setViewportSize(PHONE);
    await shot('users-phone');
    await tab.page.setViewportSize(DESKTOP);

    await open('/admin/users/new', 'Add user');
    await shot('user-new');
    await tab.page.fill('input[name=username]', `made_in_browser_${fx.backend}`);
    await tab.page.fill('input[name=email]', `browser_${fx.backend}@example.com`);
    await tab.page.fill('input[name=first_name]', 'Margaret');
    await tab.page.fill('input[name=last_name]', 'Hamilton');
    await tab.page.fill('input[name=password]', 'a browser made passphrase');
    await Promise.all([tab.page.waitForURL(/\/admin\/users\/\d+\?done=user-created$/), tab.page.click('button[type=submit].primary')]);
    expect(await tab.page.getByRole('status').textContent()).toBe('The user was created.');
    const made = await fx.server.latchkey.storage.users.findByLogin(`made_in_browser_${fx.backend}`);
    expect(made).toMatchObject({ firstName: 'Margaret', isActive: true, isStaff: false });
    await shot('user-edit');
    await tab.page.setViewportSize(PHONE);
    await shot('user-edit-phone');
    await tab.page.setViewportSize(DESKTOP);
    // A refused form comes back with the messages next to the fields and the typed values kept.
    await open('/admin/users/new', 'Add user');
    await tab.page.fill('input[name=username]', 'has space');
    await tab.page.fill('input[name=email]', 'not-an-email');
    await tab.page.fill('input[name=first_name]', 'Kept');
    await tab.page.fill('input[name=password]', 'short');
    const [refused] = await Promise.all([
      tab.page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/admin/users/new')),
      tab.page.click('button[type=submit].primary'),
    ]);
    expect(refused.status()).toBe(400);
    await tab.page.waitForLoadState();
    expect(await tab.page.locator('.field-error').count()).toBe(3);
    expect(await tab.page.inputValue('input[name=first_name]')).toBe('Kept');
    expect(await tab.page.inputValue('input[name=password]')).toBe('');
    await shot('user-new-error');
    // Chromium logs the deliberate 400 as a failed resource; nothing else may have been logged.
    expect(consoleErrors).toEqual([expect.stringContaining('status of 400')]);
    consoleErrors.length = 0;

    await open(`/admin/users/${made!.id}/password`, 'Set password');
    await shot('user-password');
    await open(`/admin/users/${made!.id}/delete`, 'Delete user?');
    await shot('user-delete');

    // Register an application with the form's defaults (authorization_code + refresh_token, confidential).
    await open('/admin/applications/new', 'Register an application');
    await shot('application-new');
    expect(await tab.page.isChecked('input[name=grant_types][value=authorization_code]')).toBe(true);
    expect(await tab.page.isChecked('input[name=grant_types][value=refresh_token]')).toBe(true);
    expect(await tab.page.isChecked('input[name=client_type][value=confidential]')).toBe(true);
    await tab.page.fill('input[name=name]', 'Registered in the browser');
    await tab.page.fill('textarea[name=redirect_uris]', REDIRECT_URI);
    const [registered] = await Promise.all([
      tab.page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/admin/applications/new')),
      tab.page.click('button[type=submit].primary'),
    ]);
    expect(registered.status()).toBe(200);
    expect(registered.headers()['cache-control']).toBe('no-store');
    await tab.page.locator('[data-testid=client-secret]').waitFor();
    const clientId = (await tab.page.locator('[data-testid=client-id]').textContent())?.trim() ?? '';
    const clientSecret = (await tab.page.locator('.secret[data-testid=client-secret]').textContent())?.trim() ?? '';
    expect(clientId).not.toBe('');
    expect(clientSecret.length).toBeGreaterThanOrEqual(40);
    expect(await tab.page.getByText('it will not be shown again').isVisible()).toBe(true);
    await shot('application-secret');

    await open('/admin/applications', 'Applications');
    expect(await tab.page.content()).not.toContain(clientSecret);
    await shot('applications');
    await open(`/admin/applications/${clientId}`, 'Registered in the browser');
    expect(await tab.page.content()).not.toContain(clientSecret);
    await shot('application-edit');
    // Rotate the signing keys with the button: the sign-in below is then signed with the new keys.
    await open('/admin/keys', 'Signing keys');
    const before = (await fx.server.latchkey.services.keyStore.list()).map((k) => k.kid);
    await Promise.all([tab.page.waitForURL(/\/admin\/keys\?done=keys-rotated$/), tab.page.click('button[type=submit].primary')]);
    expect(await tab.page.getByRole('status').textContent()).toContain('New signing keys are in use.');
    const current = (await fx.server.latchkey.services.keyStore.list()).filter((k) => k.status === 'current').map((k) => k.kid);
    for (const kid of current) expect(before).not.toContain(kid);
    expect(await tab.page.locator('.status-retired').count()).toBe(before.length);
    await shot('keys');
    expect(consoleErrors).toEqual([]);

    // The credentials copied from the page work for a real authorization-code flow.
    const config = await discover(fx.server.issuer, clientId, clientSecret);
    const { tokens } = await loginAndExchange(config, new UserAgent(), { username: endUser.username, password: PASSWORD });
    expect(tokens.claims()?.sub).toBe(String(endUser.id));
    expect(tokens.claims()?.aud).toBe(clientId);
    expect(tokens.access_token).toMatch(ACCESS_TOKEN);
    expect(tokens.refresh_token).toMatch(OPAQUE_TOKEN);
    const header = JSON.parse(Buffer.from(tokens.id_token!.split('.')[0]!, 'base64url').toString()) as { kid: string };
    expect(current).toContain(header.kid);
  });
}, { context: { viewport: DESKTOP } });
