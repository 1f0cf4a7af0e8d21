import path from 'node:path';
import * as oidc from 'openid-client';
import { beforeAll, beforeEach, expect, it } from 'vitest';
import { SCREENSHOTS } from '../helpers/chromium.js';
import { describeInChromium } from '../helpers/fixture.js';
import { authorizationRequest, discover, makeClient, PASSWORD } from '../helpers/rp.js';
import { setupLinkLog } from '../helpers/setup-link.js';
import { linkIn } from '../helpers/smtp.js';

const setupLog = setupLinkLog();

/** The front door in real headless Chromium: welcome page, error pages, sign-up with its mail, first administrator. */
describeInChromium('front door in headless Chromium', (fx, tab) => {
  let config: oidc.Configuration;
  let consoleErrors: string[];

  beforeAll(async () => {
    const made = await makeClient(fx.server.latchkey, { name: 'Front Door App' });
    config = await discover(fx.server.issuer, made.client.clientId, made.clientSecret ?? '');
  });

  beforeEach(() => {
    // CSP violations, missing stylesheets, script errors. Chromium also reports every 4xx
    // page as an error; the refused pages here are deliberate, so those are left out.
    consoleErrors = [];
    tab.page.on('console', (m) => {
      const deliberate = /^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text()) && m.location().url.startsWith(fx.server.url);
      if (m.type() === 'error' && !deliberate) consoleErrors.push(`${m.text()} ${m.location().url}`);
    });
    tab.page.on('pageerror', (e) => void consoleErrors.push(e.message));
  });

  const shot = (name: string) => tab.page.screenshot({ path: path.join(SCREENSHOTS, `${name}-${fx.backend}.png`), fullPage: true });
  const heading = () => tab.page.locator('h1').textContent();
  const noSidewaysScroll = () => tab.page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth');

  it('welcome page: issuer, discovery URL, and the ways in, also at 390 px', async () => {
    await tab.page.goto(fx.url('/'));
    expect(await heading()).toBe('Welcome to Latchkey');
    expect(await tab.page.locator('.welcome-facts code').first().textContent()).toBe(fx.server.issuer);
    expect(await tab.page.getByRole('status').textContent()).toContain('one-time setup link');
    await shot('welcome');
    await tab.page.setViewportSize({ width: 390, height: 800 });
    expect(await noSidewaysScroll()).toBe(true);
    await shot('welcome-390');

    await Promise.all([tab.page.waitForURL(/\/o\/\.well-known\/openid-configuration$/), tab.page.click(`a[href="${fx.server.issuer}/.well-known/openid-configuration"]`)]);
    expect(JSON.parse((await tab.page.locator('body').textContent()) ?? '{}')['issuer']).toBe(fx.server.issuer);
    await tab.page.goBack();
    await Promise.all([tab.page.waitForURL(/\/account\/register$/), tab.page.click('text=Create an account')]);
    expect(await heading()).toBe('Create an account');
    expect(consoleErrors).toEqual([]);
  });

  it('error pages: a styled 404 in the browser\'s language, JSON at an API path', async () => {
    const missing = await tab.page.goto(fx.url('/no/such/page'));
    expect(missing?.status()).toBe(404);
    expect(await heading()).toBe('Page not found');
    await shot('error-404');
    await Promise.all([tab.page.waitForURL(fx.url('/')), tab.page.click('text=Go to the home page')]);
    expect(await heading()).toBe('Welcome to Latchkey');

    const api = await tab.page.goto(fx.url('/api/no-such-thing/'));
    expect(api?.status()).toBe(404);
    expect(api?.headers()['content-type']).toMatch(/^application\/json/);

    await tab.reopen({ viewport: { width: 800, height: 700 }, locale: 'fr-FR' });
    await tab.page.goto(fx.url('/no/such/page'));
    expect(await heading()).toBe('Page introuvable');
    await shot('error-404-fr');
  });

  it('sign-up from the login page: policy, field messages, verification mail, back to the sign-in', async () => {
    const request = await authorizationRequest(config);
    await tab.page.goto(request.url.href);
    expect(await heading()).toBe('Sign in');
    const loginUrl = tab.page.url();
    await Promise.all([tab.page.waitForURL(/\/account\/register\?uid=/), tab.page.click('text=Create an account')]);
    expect(await heading()).toBe('Create an account');
    expect(await tab.page.locator('#password-hint').textContent()).toContain('At least 8 characters');
    await shot('signup');

    const username = `signup_${Math.random().toString(36).slice(2, 8)}`;
    const email = `${username}@example.com`;
    await tab.page.fill('input[name=username]', username);
    await tab.page.fill('input[name=email]', email);
    await tab.page.fill('input[name=password]', 'password');
    await tab.page.fill('input[name=confirm_password]', 'password');
    await Promise.all([tab.page.waitForResponse((r) => r.request().method() === 'POST'), tab.page.click('button[type=submit]')]);
    await tab.page.waitForLoadState();
    expect(await tab.page.locator('#password-error').textContent()).toBe('This password is too common; choose one that is harder to guess.');
    expect(await tab.page.locator('#password').getAttribute('aria-invalid')).toBe('true');
    // The first field with a problem has the focus.
    expect(await tab.page.evaluate('document.activeElement.id')).toBe('password');
    expect(await tab.page.inputValue('input[name=username]')).toBe(username);
    expect(await tab.page.inputValue('input[name=email]')).toBe(email);
    expect(await tab.page.inputValue('input[name=password]')).toBe('');
    await shot('signup-weak-password');

    await tab.page.fill('input[name=password]', PASSWORD);
    await tab.page.fill('input[name=confirm_password]', PASSWORD);
    await Promise.all([tab.page.waitForResponse((r) => r.request().method() === 'POST' && r.status() === 201), tab.page.click('button[type=submit]')]);
    await tab.page.waitForLoadState();
    expect(await heading()).toBe('Check your email');
    expect(await tab.page.locator('.lead').textContent()).toContain(email);
    await shot('signup-done');
    const user = await fx.server.latchkey.storage.users.findByLogin(username);
    expect(user?.emailVerified).toBe(false);

    // The link in the mail verifies the address (in another tab, as from a mail client).
    const link = linkIn((await fx.smtp.next(email)).text, `${fx.server.url}/account/verify-email?token=`);
    const mailTab = await tab.context.newPage();
    await mailTab.goto(link);
    await Promise.all([mailTab.waitForResponse((r) => r.request().method() === 'POST'), mailTab.click('button[type=submit]')]);
    await mailTab.waitForLoadState();
    expect(await mailTab.locator('h1').textContent()).toBe('Email address verified');
    await mailTab.close();
    expect((await fx.server.latchkey.storage.users.findById(user!.id))?.emailVerified).toBe(true);

    // Back to the application's sign-in, with the new account.
    await Promise.all([tab.page.waitForURL(loginUrl), tab.page.click('text=Continue signing in')]);
    expect(await heading()).toBe('Sign in');
    await tab.page.fill('input[name=username]', username);
    await tab.page.fill('input[name=password]', PASSWORD);
    await Promise.all([tab.page.waitForURL(/\/interaction\/[^/]+$/), tab.page.click('button[type=submit]')]);
    await tab.page.locator('button[name=decision][value=allow]').waitFor();
    expect(await heading()).toBe('Allow access?');
    expect(consoleErrors).toEqual([]);
  });

  it('first administrator: the logged link works once, then it and every other link are refused', async () => {
    const link = setupLog.linkFor(fx.server.url);
    await tab.page.goto(link);
    expect(await heading()).toBe('Create the first administrator');
    await shot('setup');
    const username = `admin_${Math.random().toString(36).slice(2, 8)}`;
    await tab.page.fill('input[name=username]', username);
    await tab.page.fill('input[name=email]', `${username}@example.com`);
    await tab.page.fill('input[name=password]', PASSWORD);
    await tab.page.fill('input[name=confirm_password]', PASSWORD);
    await Promise.all([tab.page.waitForResponse((r) => r.request().method() === 'POST' && r.status() === 201), tab.page.click('button[type=submit]')]);
    await tab.page.waitForLoadState();
    expect(await heading()).toBe('Administrator created');
    await shot('setup-done');

    // The admin pages take the new superuser.
    await Promise.all([tab.page.waitForURL(/\/interaction\//), tab.page.click('text=Go to the admin pages')]);
    await tab.page.fill('input[name=username]', username);
    await tab.page.fill('input[name=password]', PASSWORD);
    await Promise.all([tab.page.waitForURL(/\/admin\/$/), tab.page.click('button[type=submit]')]);

    // A second use of the link is refused.
    const again = await tab.page.goto(link);
    expect(again?.status()).toBe(410);
    expect(await heading()).toBe('An administrator exists');
    await shot('setup-link-used');
    expect(consoleErrors).toEqual([]);
  });
}, { smtp: true, create: { logger: setupLog.logger }, context: { viewport: { width: 800, height: 760 } } });
