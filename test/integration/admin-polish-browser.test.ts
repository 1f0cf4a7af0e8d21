import path from 'node:path';
import { beforeEach, expect, it } from 'vitest';
import { consoleErrorsOf, SCREENSHOTS } from '../helpers/chromium.js';
import { describeInChromium } from '../helpers/fixture.js';
import { discover, loginAndExchange, makeClient, makeUser, PASSWORD } from '../helpers/rp.js';
import { UserAgent } from '../helpers/browserless.js';

/** The few browser globals the page functions below use (the tests are typed without the DOM lib). */
interface Styled {
  tagName: string;
  matches(selector: string): boolean;
}
interface BrowserGlobals {
  document: { documentElement: { scrollWidth: number; clientWidth: number }; activeElement: Styled | null; querySelector(selector: string): Styled | null };
  navigator: { clipboard: { readText(): Promise<string> } };
  getComputedStyle(element: Styled): { outlineStyle: string; outlineWidth: string; outlineColor: string; borderTopColor: string; borderTopLeftRadius: string; paddingLeft: string; fontSize: string };
}

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** The connect help, the audit log, phones and the focus ring, in headless Chromium. */
describeInChromium('admin help, audit log and page polish in headless Chromium', (fx, tab) => {
  let consoleErrors: string[] = [];
  beforeEach(async () => {
    consoleErrors = consoleErrorsOf(tab.page);
  });

  const shot = (name: string) => tab.page.screenshot({ path: path.join(SCREENSHOTS, `admin-${name}-${fx.backend}.png`), fullPage: true });

  async function signInAsStaff(pathname = '/admin/') {
    const admin = await makeUser(fx.server.latchkey, { isStaff: true });
    await tab.page.goto(`${fx.server.url}${pathname}`);
    await tab.page.fill('input[name=username]', admin.username);
    await tab.page.fill('input[name=password]', PASSWORD);
    await Promise.all([tab.page.waitForURL(`${fx.server.url}${pathname}`), tab.page.click('button[type=submit]')]);
    return admin;
  }

  async function open(pathname: string) {
    const response = await tab.page.goto(`${fx.server.url}${pathname}`);
    expect(response?.status(), pathname).toBe(200);
  }

  /** Nothing scrolls sideways: the document is no wider than the window. */
  async function noSideways(pathname: string) {
    const { scrollWidth, clientWidth } = await tab.page.evaluate(() => {
      const { documentElement } = (globalThis as unknown as BrowserGlobals).document;
      return { scrollWidth: documentElement.scrollWidth, clientWidth: documentElement.clientWidth };
    });
    expect(scrollWidth, `${pathname} at ${clientWidth} px`).toBeLessThanOrEqual(clientWidth);
  }

  it('shows the connect help with copy buttons that copy the snippet as shown', async () => {
    await tab.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: fx.server.url });
    await signInAsStaff();
    const { client } = await makeClient(fx.server.latchkey, { name: 'Helped', grantTypes: ['authorization_code', 'refresh_token'] });
    await open(`/admin/applications/${encodeURIComponent(client.clientId)}`);
    await tab.page.locator('#connect').scrollIntoViewIfNeeded();
    expect(await tab.page.getByTestId('issuer').textContent()).toBe(`${fx.server.url}/o`);
    for (const id of ['node', 'django', 'apache', 'curl']) expect(await tab.page.locator(`#snippet-${id}-code`).isVisible(), id).toBe(true);
    const copy = tab.page.locator('button.copy[data-copy="snippet-django-code"]');
    expect(await copy.isVisible()).toBe(true);
    await copy.click();
    await expect.poll(() => copy.textContent()).toBe('Copied');
    const copied = await tab.page.evaluate(() => (globalThis as unknown as BrowserGlobals).navigator.clipboard.readText());
    expect(copied).toBe(await tab.page.locator('#snippet-django-code').textContent());
    expect(copied).toContain(`OIDC_RP_CLIENT_ID = "${client.clientId}"`);
    await shot('application-help');
    await tab.page.setViewportSize(PHONE);
    await noSideways('application help');
    await shot('application-help-phone');
    expect(consoleErrors).toEqual([]);
  });

  it('filters the audit log, and shows a bad filter next to its field', async () => {
    const admin = await signInAsStaff();
    await open('/admin/audit');
    await tab.page.fill('#event', 'login.success');
    await tab.page.fill('#user', admin.username);
    await Promise.all([tab.page.waitForURL(/\/admin\/audit\?/), tab.page.click('.filters button[type=submit]')]);
    const events = await tab.page.locator('tr[data-event]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-event')));
    expect(events.length).toBeGreaterThan(0);
    expect(new Set(events)).toEqual(new Set(['login.success']));
    await shot('audit');
    expect(consoleErrors).toEqual([]);
    // A bad value: the page answers 400 (which Chromium logs) and says what is wrong, where.
    await tab.page.fill('#from', 'last tuesday');
    await tab.page.click('.filters button[type=submit]');
    expect(await tab.page.locator('#from-error').textContent()).toContain('Not a date and time');
    expect(await tab.page.locator('#from').getAttribute('aria-invalid')).toBe('true');
    expect(await tab.page.locator('#from').inputValue()).toBe('last tuesday');
    await tab.page.setViewportSize(PHONE);
    await noSideways('audit with a bad filter');
    await shot('audit-phone');
    expect(consoleErrors.every((e) => e.includes('400'))).toBe(true);
  });

  it('has no sideways scroll at 390 px on the admin and account pages', async () => {
    const admin = await signInAsStaff();
    const { client, clientSecret } = await makeClient(fx.server.latchkey, { name: 'A rather long application name that wraps', grantTypes: ['authorization_code', 'refresh_token'] });
    // A person with a session and a connected app, so the user page lists both.
    const person = await makeUser(fx.server.latchkey);
    await loginAndExchange(await discover(`${fx.server.url}/o`, client.clientId, clientSecret), new UserAgent(), { username: person.username, password: PASSWORD });
    await tab.page.setViewportSize(PHONE);
    const app = encodeURIComponent(client.clientId);
    for (const pathname of [
      '/admin/',
      '/admin/users',
      '/admin/users/new',
      `/admin/users/${person.id}`,
      `/admin/users/${admin.id}/password`,
      '/admin/applications',
      '/admin/applications/new',
      `/admin/applications/${app}`,
      `/admin/applications/${app}/delete`,
      '/admin/resources',
      '/admin/resources/new',
      '/admin/groups',
      '/admin/groups/new',
      '/admin/keys',
      '/admin/audit',
    ]) {
      await open(pathname);
      await noSideways(pathname);
    }
    await open(`/admin/users/${person.id}`);
    expect(await tab.page.locator('#sessions [data-testid=session-device]').first().textContent()).toMatch(/ · /);
    await tab.page.locator('#sessions').scrollIntoViewIfNeeded();
    await shot('user-access-phone');
    // The account center, signed in through the same login session.
    await tab.page.goto(`${fx.server.url}/account/`);
    await tab.page.waitForURL(`${fx.server.url}/account/`);
    for (const pathname of ['/account/', '/account/password', '/account/sessions', '/account/applications', '/account/two-factor', '/account/delete']) {
      await open(pathname);
      await noSideways(pathname);
    }
    // The sessions page names this browser.
    await open('/account/sessions');
    expect(await tab.page.getByTestId('session-device').first().textContent()).toMatch(/^Headless Chrome on Linux · /);
    await shot('account-sessions-phone');
    await tab.page.setViewportSize(DESKTOP);
    await open('/admin/applications/new');
    await noSideways('/admin/applications/new at 1280 px');
    expect(consoleErrors).toEqual([]);
  });

  it('shows a 3 px accent focus ring on links, buttons, inputs and selects reached by keyboard', async () => {
    await signInAsStaff();
    await open('/admin/applications/new');
    /** Tabs until `selector` has the focus, then reads its outline. */
    async function ringOf(selector: string) {
      for (let i = 0; i < 80; i++) {
        await tab.page.keyboard.press('Tab');
        const found = await tab.page.evaluate((s) => (globalThis as unknown as BrowserGlobals).document.activeElement?.matches(s) ?? false, selector);
        if (found) break;
      }
      return tab.page.evaluate(() => {
        const { document, getComputedStyle } = globalThis as unknown as BrowserGlobals;
        const el = document.activeElement!;
        const style = getComputedStyle(el);
        return { tag: el.tagName, visible: el.matches(':focus-visible'), style: style.outlineStyle, width: style.outlineWidth, color: style.outlineColor };
      });
    }
    const ring = { visible: true, style: 'solid', width: '3px', color: 'rgb(36, 81, 198)' };
    expect(await ringOf('.admin-bar nav a')).toMatchObject({ tag: 'A', ...ring });
    expect(await ringOf('#name')).toMatchObject({ tag: 'INPUT', ...ring });
    expect(await ringOf('#token_endpoint_auth_method')).toMatchObject({ tag: 'SELECT', ...ring });
    expect(await ringOf('#jwks_uri')).toMatchObject({ tag: 'INPUT', ...ring });
    expect(await ringOf('button[type=submit]')).toMatchObject({ tag: 'BUTTON', ...ring });
    // The select and the URL input look like the text inputs.
    const looks = await tab.page.evaluate(() =>
      ['#name', '#token_endpoint_auth_method', '#jwks_uri'].map((s) => {
        const { document, getComputedStyle } = globalThis as unknown as BrowserGlobals;
        const style = getComputedStyle(document.querySelector(s)!);
        return { border: style.borderTopColor, radius: style.borderTopLeftRadius, padding: style.paddingLeft, font: style.fontSize };
      }),
    );
    expect(looks[1]).toEqual(looks[0]);
    expect(looks[2]).toEqual(looks[0]);
    // The login page (another layout) has the same ring on its button.
    const other = await tab.context.browser()!.newContext();
    const login = await other.newPage();
    await login.goto(`${fx.server.url}/account/`);
    await login.locator('input[name=username]').waitFor();
    let tag = '';
    for (let i = 0; i < 10 && tag !== 'BUTTON'; i++) {
      await login.keyboard.press('Tab');
      tag = await login.evaluate(() => (globalThis as unknown as BrowserGlobals).document.activeElement?.tagName ?? '');
    }
    expect(await login.evaluate(() => {
      const { document, getComputedStyle } = globalThis as unknown as BrowserGlobals;
      const style = getComputedStyle(document.activeElement!);
      return { style: style.outlineStyle, width: style.outlineWidth, color: style.outlineColor };
    })).toEqual({ style: 'solid', width: '3px', color: 'rgb(36, 81, 198)' });
    await other.close();
    expect(consoleErrors).toEqual([]);
  });
});
