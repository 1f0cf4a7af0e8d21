import os from 'node:os';
import path from 'node:path';
import type { CreateOptions } from '../../src/app.js';
import { createLogger } from '../../src/observability/logger.js';
import { startLatchkey, type RunningLatchkey } from '../../src/start.js';
import { freshDatabase, type TestDatabase } from './database.js';
import type { Backend } from './env.js';

export interface TestServer extends RunningLatchkey {
  db: TestDatabase;
  /** Stops the server and drops its database. */
  stop(): Promise<void>;
}

/** Server logs are quiet in tests unless LATCHKEY_TEST_LOG=1. */
export const testLogger = createLogger({ level: process.env['LATCHKEY_TEST_LOG'] === '1' ? 'info' : 'silent', pretty: false });

/** Environment every test server gets; BCRYPT_COST stays at the minimum Latchkey allows. */
export function testEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: '0',
    DATABASE_URL: databaseUrl,
    BCRYPT_COST: '10',
    SWEEP_INTERVAL_SECONDS: '0',
    // Suites make many deliberate failures from 127.0.0.1; the throttle tests set their own limits.
    LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000',
    LOGIN_MAX_FAILURES_PER_IP: '100000',
    // Without SMTP_URL, verification mails (registrations, email changes) land here instead of
    // in ./data/outbox of the working tree.
    MAIL_OUTBOX_DIR: path.join(os.tmpdir(), 'latchkey-test-outbox'),
    ...extra,
  };
}

/** Starts a real Latchkey on port 0 over HTTP with a fresh database. */
export async function startTestServer(backend: Backend, extra: Record<string, string> = {}, options: CreateOptions = {}): Promise<TestServer> {
  const db = await freshDatabase(backend);
  const running = await startLatchkey(testEnv(db.url, extra), { logger: testLogger, ...options });
  return {
    ...running,
    db,
    async stop() {
      await running.close(1000);
      await db.drop();
    },
  };
}

/** Starts another Latchkey on an existing database (restart and multi-process tests). */
export async function startOnDatabase(db: TestDatabase, extra: Record<string, string> = {}): Promise<RunningLatchkey> {
  return startLatchkey(testEnv(db.url, extra), { logger: testLogger });
}
