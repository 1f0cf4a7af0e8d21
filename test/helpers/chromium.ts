import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
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
