import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PG_ADMIN_URL, type Backend } from './env.js';
import { createScratchDatabase } from './pg-scratch.js';

export interface TestDatabase {
  backend: Backend;
  /** A DATABASE_URL for Latchkey. */
  url: string;
  drop(): Promise<void>;
}

/** A brand-new, empty database: a temp SQLite file or a new PostgreSQL database. */
export async function freshDatabase(backend: Backend): Promise<TestDatabase> {
  if (backend === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-test-'));
    return {
      backend,
      url: `sqlite:${path.join(dir, 'latchkey.sqlite3')}`,
      drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }
  const scratch = await createScratchDatabase(PG_ADMIN_URL, 'latchkey_t');
  return { backend, url: scratch.url, drop: scratch.drop };
}
