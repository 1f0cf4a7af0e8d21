/**
 * Starting and stopping the systems under test, each its own child process on 127.0.0.1:
 * the ceiling (bench/ceiling-server.ts) and Latchkey (`node dist/src/server.js`) on a fresh
 * SQLite file or a fresh PostgreSQL database. Everything started here is registered so that
 * `cleanup()` can kill it and drop the databases, whatever way the run ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { createScratchDatabase } from '../test/helpers/pg-scratch.js';
import type { RelyingParty } from './protocol.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DIST = path.join(ROOT, 'dist');
const WATCHDOG = pathToFileURL(path.join(DIST, 'bench/parent-watchdog.js')).href;

export const REDIRECT_URI = 'http://127.0.0.1:8787/callback';
export const LOGIN = { username: 'bench', password: 'bench passphrase 42' } as const;
export const NOHASH_LOGIN = { username: 'bench-nohash', password: 'unused' } as const;
export const SCOPE = 'openid profile email';

export interface RunningSystem {
  name: string;
  kind: 'ceiling' | 'latchkey';
  backend: 'memory' | 'sqlite' | 'pg';
  base: string;
  pid: number;
  rp: RelyingParty;
  databaseUrl?: string;
}

const children = new Set<ChildProcess>();
const cleanups: Array<() => Promise<void>> = [];

/** Kills every child still running (synchronously: usable from process.on('exit')). */
export function killChildren(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(child.pid, signal);
      } catch {
        // already gone
      }
    }
  }
}

/** Stops children (SIGTERM, then SIGKILL after 5 s) and runs registered cleanups (databases). */
export async function cleanup(): Promise<void> {
  const alive = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
  await Promise.all(
    alive.map(
      (child) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            if (child.pid) {
              try {
                process.kill(child.pid, 'SIGKILL');
              } catch {
                // gone
              }
            }
            resolve();
          }, 5000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          if (child.pid) {
            try {
              process.kill(child.pid, 'SIGTERM');
            } catch {
              clearTimeout(timer);
              resolve();
            }
          }
        }),
    ),
  );
  while (cleanups.length) {
    const next = cleanups.pop()!;
    await next().catch((error: unknown) => console.error(`cleanup: ${error instanceof Error ? error.message : String(error)}`));
  }
}

/** Registers a child so cleanup() finds it. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** A free TCP port on 127.0.0.1 (the server binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Environment for anything Latchkey we start: the brief's settings, nothing inherited that matters. */
function latchkeyEnv(databaseUrl: string, port?: number): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(base)) {
    if (/^(LOGIN_|DATABASE_URL$|PUBLIC_URL$|PORT$|TRUST_PROXY$|METRICS_TOKEN$|ALLOW_REGISTRATION$|KEY_REFRESH_SECONDS$)/.test(key)) delete base[key];
  }
  return {
    ...base,
    NODE_ENV: 'development',
    DATABASE_URL: databaseUrl,
    BCRYPT_COST: '10',
    LOG_LEVEL: 'warn',
    SWEEP_INTERVAL_SECONDS: '0',
    LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000',
    LOGIN_MAX_FAILURES_PER_IP: '100000',
    ...(port !== undefined ? { PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}` } : {}),
  };
}

/** Spawns a server and resolves when it prints its ready line. */
function startServer(name: string, args: string[], env: NodeJS.ProcessEnv, cwd: string, ready: RegExp): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(process.execPath, ['--import', WATCHDOG, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    const timer = setTimeout(() => fail(new Error(`${name} did not become ready within 60 s`)), 60_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${error.message}\nstdout: ${out.slice(-2000)}\nstderr: ${err.slice(-2000)}`));
    };
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      if (out.length < 100_000) out += chunk;
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      // Latchkey at LOG_LEVEL=warn, and node-oidc-provider's runtime notices, go here; keep the tail.
      err = (err + chunk).slice(-20_000);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready\nstdout: ${out.slice(-2000)}\nstderr: ${err.slice(-2000)}`));
    });
  });
}

/** Runs the compiled Latchkey CLI on a database; returns stdout. */
export function latchkeyCli(databaseUrl: string, cwd: string, ...args: string[]): Promise<string> {
  return latchkeyCliOf(DIST, databaseUrl, cwd, ...args);
}

function latchkeyCliOf(dist: string, databaseUrl: string, cwd: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(process.execPath, [path.join(dist, 'src/cli/main.js'), ...args], { cwd, env: latchkeyEnv(databaseUrl), stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`cli ${args.slice(0, 2).join(' ')} exited ${code}: ${err.trim()}`))));
  });
}

export const PG_ADMIN_URL = process.env['BENCH_DATABASE_URL'] ?? process.env['TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Resolves to undefined when PostgreSQL answers, or to the reason it does not. */
export async function postgresProblem(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    await client.end().catch(() => {});
  }
}

export interface BenchDatabase {
  backend: 'sqlite' | 'pg';
  url: string;
  /** Working directory for the processes using it (a temp dir: no stray .env is read). */
  dir: string;
}

/** A fresh, empty database (dropped by cleanup()). */
export async function freshDatabase(backend: 'sqlite' | 'pg'): Promise<BenchDatabase> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-'));
  cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
  if (backend === 'sqlite') return { backend, url: `sqlite:${path.join(dir, 'latchkey.sqlite3')}`, dir };
  const scratch = await createScratchDatabase(PG_ADMIN_URL, 'latchkey_bench');
  cleanups.push(scratch.drop);
  return { backend, url: scratch.url, dir };
}

/** Opens Knex on a bench database (prefill, row counts). */
export function openKnex(db: BenchDatabase): Knex {
  if (db.backend === 'pg') return knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 2 } });
  return knexFactory({ client: 'better-sqlite3', connection: { filename: db.url.slice('sqlite:'.length) }, useNullAsDefault: true, pool: { min: 1, max: 1 } });
}

/** Migrates a database with the Latchkey CLI (before a prefill). */
export async function migrate(db: BenchDatabase): Promise<void> {
  await latchkeyCli(db.url, db.dir, 'migrate');
}

/**
 * Starts Latchkey on `db`, with the benchmark's user and a confidential client. `root` may
 * name another checkout's build (its dist/src/server.js and CLI) to compare a candidate change.
 */
export async function startLatchkey(
  name: string,
  db: BenchDatabase,
  { withUser = true, nodeArgs = [] as string[], root = ROOT } = {},
): Promise<RunningSystem> {
  const dist = path.join(root, 'dist');
  const latchkeyCli = (url: string, cwd: string, ...args: string[]) => latchkeyCliOf(dist, url, cwd, ...args);
  const port = await freePort();
  const child = await startServer(name, [...nodeArgs, path.join(dist, 'src/server.js')], latchkeyEnv(db.url, port), db.dir, /Latchkey ready: issuer /);
  if (withUser) {
    await latchkeyCli(db.url, db.dir, 'createsuperuser', '--username', LOGIN.username, '--email', 'bench@example.com', '--password', LOGIN.password);
  }
  const created = JSON.parse(
    await latchkeyCli(
      db.url,
      db.dir,
      'client',
      'create',
      '--name',
      'Benchmark client',
      '--redirect-uri',
      REDIRECT_URI,
      '--grant-type',
      'authorization_code',
      '--grant-type',
      'refresh_token',
      '--grant-type',
      'client_credentials',
      '--json',
    ),
  ) as { client_id: string; client_secret: string };
  return {
    name,
    kind: 'latchkey',
    backend: db.backend,
    base: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    rp: { clientId: created.client_id, clientSecret: created.client_secret, redirectUri: REDIRECT_URI, scope: SCOPE },
    databaseUrl: db.url,
  };
}

/** Starts the ceiling (bare node-oidc-provider, in-memory). */
export async function startCeiling(nodeArgs: string[] = []): Promise<RunningSystem> {
  const port = await freePort();
  const rp: RelyingParty = { clientId: 'bench-client', clientSecret: randomBytes(32).toString('base64url'), redirectUri: REDIRECT_URI, scope: SCOPE };
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'development',
    PORT: String(port),
    BCRYPT_COST: '10',
    CEILING_CLIENT_ID: rp.clientId,
    CEILING_CLIENT_SECRET: rp.clientSecret,
    CEILING_REDIRECT_URI: REDIRECT_URI,
    CEILING_USERNAME: LOGIN.username,
    CEILING_PASSWORD: LOGIN.password,
    CEILING_NOHASH_USERNAME: NOHASH_LOGIN.username,
  };
  const child = await startServer('ceiling', [...nodeArgs, path.join(DIST, 'bench/ceiling-server.js')], env, os.tmpdir(), /ceiling ready: issuer /);
  return { name: 'ceiling', kind: 'ceiling', backend: 'memory', base: `http://127.0.0.1:${port}`, pid: child.pid!, rp };
}
