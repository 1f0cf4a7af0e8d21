import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** Runs one statement as the PostgreSQL admin (CREATE/DROP DATABASE cannot run in a pool's transaction). */
async function asAdmin(adminUrl: string, sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/**
 * A new, empty PostgreSQL database next to the one `adminUrl` names, and how to drop it.
 * Shared by the tests and the benchmark (bench/systems.ts); it needs nothing from vitest.
 */
export async function createScratchDatabase(adminUrl: string, prefix: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await asAdmin(adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { url: url.href, drop: () => asAdmin(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}
