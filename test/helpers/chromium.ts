import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { chromiumPath } from './env.js';

/** Where browser tests save screenshots (a CI artifact). */
export const SCREENSHOTS = path.resolve(import.meta.dirname, '../../test-artifacts/screenshots');

/**
 * The system Chromium, headless, with the flags this closed network needs (no background
 * networking, no component updates, no QUIC), and the screenshot folder ready.
 */
export async function launchChromium(): Promise<Browser> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({
    executablePath: chromiumPath(),
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

/**
 * One headless Chromium for the enclosing describe block: launched before its tests, closed
 * after them. Returns a getter, since the browser exists only once beforeAll has run.
 */
export function useChromium(): () => Browser {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => browser?.close());
  return () => {
    if (!browser) throw new Error('Chromium is not running (used outside a test?)');
    return browser;
  };
}

/**
 * The errors a page logs from now on, as they happen: a CSP violation (an inline script or
 * style), a missing stylesheet or icon, an uncaught exception.
 */
export function consoleErrorsOf(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`${m.text()} ${m.location().url}`);
  });
  page.on('pageerror', (e) => void errors.push(e.message));
  return errors;
}
