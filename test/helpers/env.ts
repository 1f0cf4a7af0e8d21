import fs from 'node:fs';

/** PostgreSQL used by tests; each test database is created next to this one. */
export const PG_ADMIN_URL = process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

export function chromiumPath(): string | undefined {
  const candidates = [process.env['CHROMIUM_PATH'], '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find((p): p is string => !!p && fs.existsSync(p));
}

export type Backend = 'sqlite' | 'pg';

/** Backends this run tests: SQLite always, PostgreSQL when reachable (mandatory in CI). */
export const BACKENDS: Backend[] = process.env['LATCHKEY_TEST_PG'] === 'unavailable' ? ['sqlite'] : ['sqlite', 'pg'];

export const browserAvailable = () => process.env['LATCHKEY_TEST_BROWSER'] !== 'unavailable';
