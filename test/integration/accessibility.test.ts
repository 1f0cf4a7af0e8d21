import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserAvailable } from '../helpers/env.js';
import { consoleErrorsOf, launchChromium, SCREENSHOTS } from '../helpers/chromium.js';
import { useServer } from '../helpers/fixture.js';
import { makeClient, makeUser, PASSWORD } from '../helpers/rp.js';

/**
 * Every page Latchkey renders, scanned with axe-core in headless Chromium, at desktop and
 * phone width: no serious or critical violation of WCAG 2.0/2.1/2.2 A and AA. Pages are
 * reached the way people reach them (signing in through the login page, following the
 * admin and account links), including their error states (a refused login, a dead link).
 * One backend is enough: the pages do not depend on it.
 */

const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];
const WIDTHS = [
  { name: 'desktop', width: 1280, height: 800 },
  { name: 'phone', width: 390, height: 844 },
];

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: unknown[] }>;
}

/**
 * axe's serious and critical findings on the page as it is now. Evaluated through the
 * DevTools protocol, which the pages' CSP (no inline script) does not govern.
 */
async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const violations = (await page.evaluate(
    `axe.run(document, { runOnly: { type: 'tag', values: ${JSON.stringify(WCAG_TAGS)} } })
       .then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) })))`,
  )) as Violation[];
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')}`);
}

describe.skipIf(!browserAvailable())('accessibility of every page (axe-core, sqlite)', () => {
  const fx = useServer('sqlite');
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  const found: string[] = [];
  const scanned: string[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => browser?.close());

  /** Scans the page at both widths (and takes a phone screenshot); records what it found under `label`. */
  async function scan(page: Page, label: string): Promise<void> {
    for (const size of WIDTHS) {
      await page.setViewportSize({ width: size.width, height: size.height });
      for (const problem of await seriousViolations(page)) found.push(`${label} [${size.name}]: ${problem}`);
    }
    await page.setViewportSize({ width: WIDTHS[0]!.width, height: WIDTHS[0]!.height });
    scanned.push(label);
  }

  async function visit(page: Page, pathname: string, label = pathname): Promise<void> {
    const response = await page.goto(`${fx.server.url}${pathname}`);
    expect(response?.status(), `${label}: ${page.url()}`).toBeLessThan(500);
    await scan(page, label);
  }

  it('finds what it is meant to find (a control with no name, an image with no text)', async () => {
    const page = await browser.newPage();
    await page.setContent('<!doctype html><html lang="en"><title>t</title><main><img src="x.png"><button></button></main></html>');
    const problems = await seriousViolations(page);
    expect(problems.some((p) => p.startsWith('image-alt'))).toBe(true);
    expect(problems.some((p) => p.startsWith('button-name'))).toBe(true);
    await page.close();
  });

  it('has no serious or critical violation on any page, signed out, signed in, and as staff', async () => {
    const staff = await makeUser(fx.server.latchkey, { isStaff: true, isSuperuser: true, username: 'a11y_admin', firstName: 'Ada', lastName: 'Admin' });
    const other = await makeUser(fx.server.latchkey, { username: 'a11y_person' });
    // The relying party's callback is a page of this server that does not exist: landing there is enough.
    const callback = `${fx.server.url}/rp-callback`;
    const { client } = await makeClient(fx.server.latchkey, { name: 'Accessible App', scope: 'openid profile email offline_access', redirectUris: [callback] });
    const group = await fx.server.latchkey.services.groupService.create({ name: 'editors', permissions: ['blog.change_post'] });
    const resource = await fx.server.latchkey.services.resourceService.create({ identifier: 'https://orders.example.com/api', name: 'Orders', scopes: ['read:orders'] });

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const consoleErrors = consoleErrorsOf(page);
    // Expected: the 4xx statuses of the refused states scanned on purpose, and the callback page that is not there.
    const refusedOnPurpose = /status of 4\d\d .*\/(login|password\/reset\?token=dead|verify-email\?token=dead|admin\/users\/new|no-such-page|setup\?token=dead|account\/register|rp-callback\?.*)$/;
    const expectedError = (e: string) => refusedOnPurpose.test(e);

    // Signed out: the login page of an authorization request, and its refused state.
    const authorize = new URL(`${fx.server.issuer}/auth`);
    for (const [k, v] of Object.entries({ client_id: client.clientId, response_type: 'code', scope: 'openid profile email', redirect_uri: callback, state: 'a11y', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' })) {
      authorize.searchParams.set(k, v);
    }
    await page.goto(authorize.href);
    await scan(page, 'login');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'a11y-login-phone.png') });
    await page.fill('input[name=username]', staff.username);
    await page.fill('input[name=password]', 'not the password');
    await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
    await scan(page, 'login (refused)');
    await visit(page, '/account/password/forgot');
    await visit(page, '/account/password/reset?token=dead', 'password reset (dead link)');
    await visit(page, '/account/verify-email?token=dead', 'email verification (dead link)');
    await visit(page, '/o/device', 'device code entry');
    await visit(page, '/', 'welcome');
    await visit(page, '/no-such-page', 'not found');
    await visit(page, '/setup?token=dead', 'first administrator (dead link)');
    await visit(page, '/account/register', 'sign-up');
    await page.fill('input[name=username]', 'has space');
    await page.fill('input[name=password]', 'short');
    await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
    await scan(page, 'sign-up (refused)');

    // Signing in: the login page, then consent.
    await page.goto(authorize.href);
    await page.fill('input[name=username]', staff.username);
    await page.fill('input[name=password]', PASSWORD);
    await Promise.all([page.waitForURL(/\/interaction\//), page.click('button[type=submit]')]);
    await scan(page, 'consent');
    await Promise.all([page.waitForURL(`${callback}?**`), page.click('button[value=allow]')]);

    // The account center.
    for (const pathname of ['/account', '/account/password', '/account/two-factor', '/account/applications', '/account/sessions', '/account/delete']) {
      await page.goto(`${fx.server.url}${pathname}`);
      await page.waitForURL(`${fx.server.url}${pathname}**`);
      await scan(page, pathname);
    }

    // The admin pages.
    await page.goto(`${fx.server.url}/admin/`);
    await page.waitForURL(`${fx.server.url}/admin/`);
    await scan(page, '/admin');
    const adminPages = [
      '/admin/users',
      '/admin/users/new',
      `/admin/users/${other.id}`,
      `/admin/users/${other.id}/password`,
      `/admin/users/${other.id}/two-factor`,
      `/admin/users/${other.id}/delete`,
      '/admin/applications',
      '/admin/applications/new',
      `/admin/applications/${client.clientId}`,
      `/admin/applications/${client.clientId}/delete`,
      '/admin/resources',
      '/admin/resources/new',
      `/admin/resources/${resource.id}`,
      `/admin/resources/${resource.id}/delete`,
      '/admin/groups',
      '/admin/groups/new',
      `/admin/groups/${group.id}`,
      `/admin/groups/${group.id}/delete`,
      '/admin/keys',
      '/admin/audit',
      '/admin/audit?event=login.*',
    ];
    for (const pathname of adminPages) await visit(page, pathname);
    // A refused admin form, with its messages next to the fields.
    await page.goto(`${fx.server.url}/admin/users/new`);
    await page.fill('input[name=username]', 'has space');
    await page.fill('input[name=email]', 'not-an-email');
    await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit].primary')]);
    await scan(page, '/admin/users/new (refused)');

    // Signing out: the provider's confirmation page.
    await visit(page, '/o/session/end', 'sign-out confirmation');

    await context.close();
    console.log(`axe-core scanned ${scanned.length} pages at ${WIDTHS.length} widths`);
    expect(found).toEqual([]);
    expect(consoleErrors.filter((e) => !expectedError(e))).toEqual([]);
  });
});
