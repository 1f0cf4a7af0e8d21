import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { chromiumPath, PG_ADMIN_URL } from './env.js';

/**
 * Runs once before the suite: makes sure dist/ exists for the CLI tests, and decides whether
 * the PostgreSQL and browser tests can run. Locally a missing service is one visible
 * "skipped" line; with CI=true it fails the run.
 */
export default async function setup(): Promise<void> {
  const root = path.resolve(import.meta.dirname, '../..');
  if (!fs.existsSync(path.join(root, 'dist/src/cli/main.js'))) {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  }
  const ci = process.env['CI'] === 'true' || process.env['CI'] === '1';

  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    process.env['LATCHKEY_TEST_PG'] = 'available';
  } catch (error) {
    if (ci) throw new Error(`CI=true but PostgreSQL is unreachable at ${PG_ADMIN_URL}: ${(error as Error).message}`);
    process.env['LATCHKEY_TEST_PG'] = 'unavailable';
    console.warn(`\n[latchkey] PostgreSQL unreachable at ${PG_ADMIN_URL}: PostgreSQL tests skipped\n`);
  } finally {
    await client.end().catch(() => {});
  }

  if (chromiumPath()) {
    process.env['LATCHKEY_TEST_BROWSER'] = 'available';
  } else if (ci) {
    throw new Error('CI=true but no Chromium found at /usr/bin/chromium (set CHROMIUM_PATH)');
  } else {
    process.env['LATCHKEY_TEST_BROWSER'] = 'unavailable';
    console.warn('\n[latchkey] Chromium not found (apt-get install chromium): browser tests skipped\n');
  }
}
