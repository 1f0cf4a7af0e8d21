import path from 'node:path';
import * as oidc from 'openid-client';
import { beforeAll, beforeEach, expect, it } from 'vitest';
import { describeInChromium } from '../helpers/fixture.js';
import { SCREENSHOTS } from '../helpers/chromium.js';
import { authorizationRequest, discover, makeClient, makeUser, PASSWORD } from '../helpers/rp.js';
import { linkIn } from '../helpers/smtp.js';

const NEW_PASSWORD = 'my new browser passphrase';

/** The email pages in real headless Chromium, following links from mails a real SMTP server received. */
describeInChromium('email pages in headless Chromium', (fx, tab) => {
  let config: oidc.Configuration;
  let consoleErrors: string[];

  beforeAll(async () => {
    const made = await makeClient(fx.server.latchkey, { name: 'Email Test App' });
    config = await discover(fx.server.issuer, made.client.clientId, made.clientSecret ?? '');
  });

  beforeEach(async () => {
    // A CSP violation or a missing stylesheet shows up as a console error. Chromium also
    // reports every 4xx page as one; those are the pages under test here (refused passwords
    // and used links), so they are left out.
    consoleErrors = [];
    tab.page.on('console', (m) => {
      const deliberate = /^Failed to load resource: the server responded with a status of 4\d\d/.test(m.text()) && m.location().url.startsWith(fx.server.url);
      if (m.type() === 'error' && !deliberate) consoleErrors.push(`${m.text()} ${m.location().url}`);
    });
    tab.page.on('pageerror', (e) => void consoleErrors.push(e.message));
  });

  const shot = (name: string) => tab.page.screenshot({ path: path.join(SCREENSHOTS, `${name}-${fx.backend}.png`), fullPage: true });
  const heading = () => tab.page.locator('h1').textContent();

  it('forgot password from the login page, link from the mail, new password, then signs in with it', async () => {
    const user = await makeUser(fx.server.latchkey);
    const request = await authorizationRequest(config);
    await tab.page.goto(request.url.href);
    await expect.poll(heading).toBe('Sign in');
    const loginUrl = tab.page.url();

    await Promise.all([tab.page.waitForURL(/\/account\/password\/forgot\?uid=/), tab.page.click('text=Forgot your password?')]);
    expect(await heading()).toBe('Forgot your password?');
    await shot('forgot-password');
    await tab.page.fill('input[name=email]', user.email!);
    await Promise.all([tab.page.waitForURL(/\/account\/password\/forgot$/), tab.page.click('button[type=submit]')]);
    expect(await heading()).toBe('Check your email');
    await shot('forgot-password-sent');

    const mail = await fx.smtp.next(user.email!);
    const link = linkIn(mail.text, `${fx.server.url}/account/password/reset?token=`);
    await tab.page.goto(link);
    expect(await heading()).toBe('Choose a new password');
    expect(await tab.page.locator('.lead strong').textContent()).toBe(user.username);
    await shot('reset-password');

    // A mismatch re-renders the form with a message; the link still works.
    await tab.page.fill('input[name=password]', NEW_PASSWORD);
    await tab.page.fill('input[name=confirm_password]', `${NEW_PASSWORD} typo`);
    await Promise.all([tab.page.waitForResponse((r) => r.request().method() === 'POST'), tab.page.click('button[type=submit]')]);
    await tab.page.waitForLoadState();
    expect(await tab.page.getByRole('alert').textContent()).toBe('The two passwords do not match.');
    await shot('reset-password-mismatch');

    await tab.page.fill('input[name=password]', NEW_PASSWORD);
    await tab.page.fill('input[name=confirm_password]', NEW_PASSWORD);
    await Promise.all([tab.page.waitForResponse((r) => r.request().method() === 'POST' && r.status() === 200), tab.page.click('button[type=submit]')]);
    await tab.page.waitForLoadState();
    expect(await heading()).toBe('Password changed');
    await shot('reset-password-done');

    // Back to the same sign-in: the old password is refused, the new one works.
    await Promise.all([tab.page.waitForURL(loginUrl), tab.page.click('text=Continue signing in')]);
    expect(await heading()).toBe('Sign in');
    await tab.page.fill('input[name=username]', user.username);
    await tab.page.fill('input[name=password]', PASSWORD);
    await Promise.all([tab.page.waitForResponse((r) => r.request().method() === 'POST'), tab.page.click('button[type=submit]')]);
    await tab.page.waitForLoadState();
    expect(await tab.page.getByRole('alert').textContent()).toBe('Invalid username or password.');
    await tab.page.fill('input[name=password]', NEW_PASSWORD);
    await Promise.all([tab.page.waitForURL(/\/interaction\/[^/]+$/), tab.page.click('button[type=submit]')]);
    await tab.page.locator('button[name=decision][value=allow]').waitFor();
    expect(await heading()).toBe('Allow access?');

    // The used link now says so, and offers to ask again.
    await tab.page.goto(link);
    expect(await heading()).toBe('Link not valid');
    expect(await tab.page.getByRole('alert').textContent()).toContain('already used');
    const askAgain = tab.page.locator('a', { hasText: 'Ask for a new link' });
    expect(await askAgain.getAttribute('href')).toBe(`/account/password/forgot?uid=${new URL(loginUrl).pathname.split('/').pop()}`);
    await shot('reset-password-link-used');
    expect(consoleErrors).toEqual([]);
  });

  it('verification link from the registration mail, Verify, verified', async () => {
    const username = `browser_${Math.random().toString(36).slice(2, 8)}`;
    const email = `${username}@example.com`;
    const created = await fetch(`${fx.server.url}/api/users/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, email, password: PASSWORD }),
    });
    expect(created.status).toBe(201);
    const id = ((await created.json()) as { id: number }).id;

    const link = linkIn((await fx.smtp.next(email)).text, `${fx.server.url}/account/verify-email?token=`);
    await tab.page.goto(link);
    expect(await heading()).toBe('Verify your email address');
    expect(await tab.page.locator('.lead strong').textContent()).toBe(email);
    await shot('verify-email');
    expect((await fx.server.latchkey.storage.users.findById(id))?.emailVerified).toBe(false);

    await Promise.all([tab.page.waitForResponse((r) => r.request().method() === 'POST'), tab.page.click('button[type=submit]')]);
    await tab.page.waitForLoadState();
    expect(await heading()).toBe('Email address verified');
    await shot('verify-email-done');
    expect((await fx.server.latchkey.storage.users.findById(id))?.emailVerified).toBe(true);

    await tab.page.goto(link);
    expect(await heading()).toBe('Link not valid');
    await shot('verify-email-link-used');
    expect(consoleErrors).toEqual([]);
  });
}, { context: { viewport: { width: 800, height: 760 } }, smtp: true });
