import { consoleErrorsOf, SCREENSHOTS } from '../helpers/chromium.js';
import path from 'node:path';
import * as oidc from 'openid-client';
import type { Page } from 'playwright-core';
import { beforeAll, beforeEach, expect, it } from 'vitest';
import type { User } from '../../src/storage/users.js';
import { UserAgent } from '../helpers/browserless.js';
import { discover, loginAndExchange, makeClient, makeUser, PASSWORD } from '../helpers/rp.js';
import { codeAt } from '../helpers/two-factor.js';
import { describeInChromium } from '../helpers/fixture.js';
import { ACCESS_TOKEN } from '../helpers/shapes.js';

const DESKTOP = { width: 1024, height: 800 };
const PHONE = { width: 390, height: 844 };
const NEW_PASSWORD = 'a passphrase chosen in the browser';

/**
 * The account center in headless Chromium, one person's visit from sign-in to deleting the
 * account. Their applications run in other "browsers" (cookie-keeping HTTP agents) through
 * openid-client, so each action is checked on real tokens.
 */
describeInChromium('account center in headless Chromium', (fx, tab) => {
  let mail: oidc.Configuration;
  let calendar: oidc.Configuration;
  let consoleErrors: string[] = [];

  beforeAll(async () => {
    const a = await makeClient(fx.server.latchkey, { name: 'Mail', grantTypes: ['authorization_code', 'refresh_token'] });
    const b = await makeClient(fx.server.latchkey, { name: 'Calendar', grantTypes: ['authorization_code', 'refresh_token'] });
    mail = await discover(fx.server.issuer, a.client.clientId, a.clientSecret);
    calendar = await discover(fx.server.issuer, b.client.clientId, b.clientSecret);
  });

  beforeEach(async () => {
    consoleErrors = consoleErrorsOf(tab.page);
  });

  const shot = (name: string) => tab.page.screenshot({ path: path.join(SCREENSHOTS, `account-${name}-${fx.backend}.png`), fullPage: true });
  const heading = () => tab.page.locator('h1').textContent();
  const notice = () => tab.page.getByRole('status').textContent();
  const signIn = (user: User, password = PASSWORD) => ({ username: user.username, password });

  /** Clicks a form's submit button and waits for the page the POST leads to. */
  async function send(button: ReturnType<Page['locator']>, to: RegExp): Promise<void> {
    await Promise.all([tab.page.waitForURL(to), button.click()]);
  }

  /** Goes to /account/, which sends the browser through the login page and back. */
  async function signInHere(user: User, password = PASSWORD): Promise<void> {
    await tab.page.goto(`${fx.server.url}/account/`);
    expect(new URL(tab.page.url()).pathname).toMatch(/^\/interaction\//);
    expect(await heading()).toBe('Sign in');
    await tab.page.fill('input[name=username]', user.username);
    await tab.page.fill('input[name=password]', password);
    await send(tab.page.locator('button[type=submit]'), new RegExp(`^${fx.server.url}/account/$`));
  }

  it('signs in, edits the profile, revokes an app, signs another session out, changes the password, signs out, deletes the account', async () => {
    const user = await makeUser(fx.server.latchkey, { firstName: 'Ada', lastName: 'Lovelace' });
    // Mail on a tablet and Calendar on a phone, each its own login session.
    const tablet = (await loginAndExchange(mail, new UserAgent(), signIn(user))).tokens;
    const phone = (await loginAndExchange(calendar, new UserAgent(), signIn(user))).tokens;

    // Sign in: the login page, then the profile.
    await signInHere(user);
    expect(await heading()).toBe('Profile');
    expect(await tab.page.locator('nav.account-nav a[aria-current=page]').textContent()).toBe('Profile');
    expect(await tab.page.locator('#email-status').textContent()).toBe('Verified');
    await shot('profile');
    await tab.page.setViewportSize(PHONE);
    await shot('profile-phone');
    await tab.page.setViewportSize(DESKTOP);

    // Edit the profile: a refused address keeps what was typed; a good one needs the current
    // password, and then waits for its verification link while the old one stays in use.
    await tab.page.fill('input[name=first_name]', 'Grace');
    await tab.page.fill('input[name=last_name]', 'Hopper');
    await tab.page.fill('input[name=email]', 'not-an-email');
    const [refused] = await Promise.all([
      tab.page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/account/profile')),
      tab.page.click('button[type=submit].primary'),
    ]);
    expect(refused.status()).toBe(400);
    await tab.page.waitForLoadState();
    expect(await tab.page.locator('#email-error').textContent()).toBe('Enter a valid email address.');
    expect(await tab.page.inputValue('input[name=first_name]')).toBe('Grace');
    await shot('profile-error');
    expect(consoleErrors).toEqual([expect.stringContaining('status of 400')]);
    consoleErrors.length = 0;
    const newEmail = `grace_${user.id}@example.com`;
    await tab.page.fill('input[name=email]', newEmail);
    const [unproven] = await Promise.all([
      tab.page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/account/profile')),
      tab.page.click('button[type=submit].primary'),
    ]);
    expect(unproven.status()).toBe(400);
    await tab.page.waitForLoadState();
    expect(await tab.page.locator('#current_password-error').textContent()).toBe('This field is required.');
    expect(await tab.page.inputValue('input[name=email]')).toBe(newEmail);
    await shot('profile-password-needed');
    expect(consoleErrors).toEqual([expect.stringContaining('status of 400')]);
    consoleErrors.length = 0;
    await tab.page.fill('input[name=current_password]', PASSWORD);
    await send(tab.page.locator('button[type=submit].primary'), /\/account\/\?done=profile-saved-verify$/);
    expect(await notice()).toContain('Your profile was saved.');
    expect(await tab.page.locator('#email-status').textContent()).toBe('Verified');
    expect(await tab.page.locator('#pending-email-status').textContent()).toBe('waiting for verification');
    expect(await tab.page.locator('dd', { hasText: newEmail }).count()).toBe(1);
    expect(await tab.page.getByRole('button', { name: 'Send the verification email again' }).isVisible()).toBe(true);
    expect(await fx.server.latchkey.storage.users.findById(user.id)).toMatchObject({
      firstName: 'Grace',
      lastName: 'Hopper',
      email: user.email,
      emailVerified: true,
      pendingEmail: newEmail,
    });
    await shot('profile-saved');

    // Applications: both, with their scopes in words; revoking Mail kills the tablet's tokens.
    await tab.page.click('nav.account-nav >> text=Applications');
    await tab.page.waitForURL(/\/account\/applications$/);
    expect(await heading()).toBe('Connected applications');
    expect(await tab.page.locator('#apps > li h2').allTextContents()).toEqual(expect.arrayContaining(['Mail', 'Calendar']));
    expect(await tab.page.locator('#apps > li').count()).toBe(2);
    const mailItem = tab.page.locator('#apps > li', { has: tab.page.locator('h2', { hasText: 'Mail' }) });
    expect(await mailItem.getByText('See your email address and whether it is verified').isVisible()).toBe(true);
    await shot('applications');
    await send(mailItem.getByRole('button', { name: 'Revoke access' }), /\/account\/applications\?done=app-revoked$/);
    expect(await notice()).toContain('Access was revoked');
    expect(await tab.page.locator('#apps > li h2').allTextContents()).toEqual(['Calendar']);
    await expect(oidc.refreshTokenGrant(mail, tablet.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await shot('applications-revoked');

    // Sessions: this one, the tablet's and the phone's; signing the phone out kills Calendar there.
    await tab.page.click('nav.account-nav >> text=Sessions');
    await tab.page.waitForURL(/\/account\/sessions$/);
    expect(await tab.page.locator('#sessions > li').count()).toBe(3);
    expect(await tab.page.locator('#sessions > li.current .badge').textContent()).toBe('This device');
    await shot('sessions');
    const phoneItem = tab.page.locator('#sessions > li', { hasText: 'Applications: Calendar' });
    await send(phoneItem.getByRole('button', { name: 'Sign out' }), /\/account\/sessions\?done=session-ended$/);
    expect(await notice()).toBe('That session was signed out.');
    expect(await tab.page.locator('#sessions > li').count()).toBe(2);
    await expect(oidc.fetchUserInfo(calendar, phone.access_token, oidc.skipSubjectCheck)).rejects.toThrow();
    await shot('sessions-ended');

    // Password: Calendar, signed in again from a laptop, loses its refresh token; this browser stays in.
    const laptop = (await loginAndExchange(calendar, new UserAgent(), signIn(user))).tokens;
    expect((await oidc.refreshTokenGrant(calendar, laptop.refresh_token!)).access_token).toMatch(ACCESS_TOKEN);
    await tab.page.click('nav.account-nav >> text=Password');
    await tab.page.waitForURL(/\/account\/password$/);
    await shot('password');
    await tab.page.fill('input[name=current_password]', PASSWORD);
    await tab.page.fill('input[name=new_password]', NEW_PASSWORD);
    await tab.page.fill('input[name=confirm_password]', NEW_PASSWORD);
    await send(tab.page.locator('button[type=submit].primary'), /\/account\/password\?done=password-changed$/);
    expect(await notice()).toContain('Your password was changed.');
    await shot('password-changed');
    await expect(oidc.refreshTokenGrant(calendar, laptop.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await tab.page.goto(`${fx.server.url}/account/sessions`);
    expect(await tab.page.locator('#sessions > li').count()).toBe(1);

    // Sign out from the nav: the provider's sign-out page, then the account center wants a login.
    await tab.page.click('.account-who >> text=Sign out');
    await tab.page.waitForURL(/\/o\/session\/end/);
    expect(await heading()).toBe('Sign out?');
    await shot('sign-out');
    await Promise.all([tab.page.waitForLoadState(), tab.page.click('button[name=logout][value=yes]')]);
    await tab.page.locator('h1', { hasText: 'Signed out' }).waitFor();
    expect(await fx.server.latchkey.services.selfService.sessions(user)).toEqual([]);
    await signInHere(user, NEW_PASSWORD);

    // Delete: the username typed and the password, then nobody is signed in.
    await tab.page.click('nav.account-nav >> text=Delete account');
    await tab.page.waitForURL(/\/account\/delete$/);
    expect(await heading()).toBe('Delete account');
    await shot('delete');
    await tab.page.fill('input[name=username]', user.username);
    await tab.page.fill('input[name=password]', NEW_PASSWORD);
    await Promise.all([tab.page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/account/delete')), tab.page.click('button.danger')]);
    await tab.page.locator('h1', { hasText: 'Account deleted' }).waitFor();
    await shot('deleted');
    expect(await fx.server.latchkey.storage.users.findById(user.id)).toBeUndefined();
    await tab.page.goto(`${fx.server.url}/account/`);
    expect(new URL(tab.page.url()).pathname).toMatch(/^\/interaction\//);
    expect(consoleErrors).toEqual([]);
  });

  it('sets up two-factor authentication with the QR code page, then signs in with a code', async () => {
    const user = await makeUser(fx.server.latchkey);
    await signInHere(user);
    await tab.page.click('nav.account-nav >> text=Two-factor authentication');
    await tab.page.waitForURL(/\/account\/two-factor$/);
    // The current password first: a stolen session cannot put its own authenticator on the account.
    await tab.page.fill('input[name=password]', PASSWORD);
    await send(tab.page.getByRole('button', { name: 'Set up an authenticator app' }), /\/account\/two-factor\/setup$/);
    // The QR code is an image the page's CSP allows, and it has really been drawn.
    const qr = tab.page.locator('img#qr');
    await qr.waitFor();
    expect(await qr.evaluate((img) => {
      const image = img as unknown as { complete: boolean; naturalWidth: number };
      return image.complete && image.naturalWidth > 0;
    })).toBe(true);
    const secret = (await tab.page.locator('#secret').textContent())!;
    await shot('two-factor-setup');
    await tab.page.fill('input[name=code]', codeAt(secret));
    await send(tab.page.getByRole('button', { name: 'Turn on two-factor authentication' }), /\/account\/two-factor\/confirm$/);
    expect(await tab.page.locator('#recovery-codes li').count()).toBe(10);
    await shot('two-factor-recovery-codes');

    // The next sign-in asks for a code after the password.
    await tab.context.clearCookies();
    await tab.page.goto(`${fx.server.url}/account/`);
    await tab.page.fill('input[name=username]', user.username);
    await tab.page.fill('input[name=password]', PASSWORD);
    await Promise.all([tab.page.waitForLoadState(), tab.page.click('button[type=submit]')]);
    await tab.page.locator('h1', { hasText: 'Two-step verification' }).waitFor();
    await tab.page.fill('input[name=code]', codeAt(secret, 1));
    await send(tab.page.locator('button[type=submit]'), new RegExp(`^${fx.server.url}/account/$`));
    expect(await heading()).toBe('Profile');
    expect(consoleErrors).toEqual([]);
  });

  it('speaks French to a French browser', async () => {
    await tab.reopen({ viewport: DESKTOP, locale: 'fr-FR' });
    const user = await makeUser(fx.server.latchkey, { emailVerified: false });
    await tab.page.goto(`${fx.server.url}/account/`);
    await tab.page.fill('input[name=username]', user.username);
    await tab.page.fill('input[name=password]', PASSWORD);
    await Promise.all([tab.page.waitForURL(new RegExp(`^${fx.server.url}/account/$`)), tab.page.click('button[type=submit]')]);
    expect(await heading()).toBe('Profil');
    expect(await tab.page.locator('#email-status').textContent()).toBe('Non vérifiée');
    expect(await tab.page.locator('html').getAttribute('lang')).toBe('fr');
    await shot('profile-fr');
    await tab.page.goto(`${fx.server.url}/account/sessions`);
    expect(await tab.page.locator('#sessions > li.current .badge').textContent()).toBe('Cet appareil');
    await shot('sessions-fr');
  });
}, { context: { viewport: DESKTOP } });
