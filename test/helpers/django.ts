import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PG_ADMIN_URL, type Backend } from './env.js';
import { createScratchDatabase } from './pg-scratch.js';
import { runProcess } from './process.js';

/**
 * A real Django 3.2 + django-oauth-toolkit 1.7 site's database, built by Django's own code
 * (test/fixtures/django/seed.py), for the import tests. Debian's python (not a pyenv one on
 * PATH) is the one with the packages.
 */
export const DJANGO_PYTHON = process.env['DJANGO_PYTHON'] ?? '/usr/bin/python3';
const SEED = path.resolve(import.meta.dirname, '../fixtures/django/seed.py');
const DEBIAN_PACKAGES =
  'python3-django python3-django-oauth-toolkit python3-djangorestframework python3-argon2 python3-bcrypt python3-psycopg2';

export interface DjangoUser {
  username: string;
  /** null for the account with an unusable password. */
  password: string | null;
  /** pbkdf2_sha256, pbkdf2_sha1, argon2id, argon2i, bcrypt_sha256, bcrypt, scrypt or unusable. */
  hasher: string;
  /** The password column as Django stored it. */
  encoded: string;
  email: string;
  is_active: boolean;
  is_staff: boolean;
  is_superuser: boolean;
  groups: string[];
}

export interface DjangoApplication {
  name: string;
  client_id: string;
  client_secret: string | null;
  grant: 'password' | 'authorization-code' | 'client-credentials' | 'implicit';
  secret_storage?: 'clear' | 'hashed';
  redirect_uris?: string[];
}

export interface DjangoToken {
  client_id: string;
  username: string;
  scope: string;
  access_token: string;
  refresh_token: string;
}

/** What seed.py prints: everything a test may sign in with. */
export interface DjangoManifest {
  user_table: string;
  users: DjangoUser[];
  applications: DjangoApplication[];
  tokens: DjangoToken[];
  revoked_refresh_token: string;
  expired_access_token: string;
}

export interface DjangoSite {
  backend: Backend;
  /** What `import django --from` takes: the SQLite file's path or the postgres:// URL. */
  from: string;
  manifest: DjangoManifest;
  drop(): Promise<void>;
}

/** Throws one clear sentence when the Python that runs the fixture lacks Django or DOT. */
async function assertDjangoAvailable(): Promise<void> {
  const probe = await runProcess(DJANGO_PYTHON, ['-c', 'import django, oauth2_provider, rest_framework, argon2, bcrypt, psycopg2'], {
    env: process.env,
    cwd: os.tmpdir(),
  }).catch((error: Error) => ({ code: -1, stderr: error.message }));
  if (probe.code !== 0) {
    throw new Error(
      `the Django import tests need ${DJANGO_PYTHON} with Django 3.2 and django-oauth-toolkit (Debian: apt-get install ${DEBIAN_PACKAGES}): ${probe.stderr.trim().split('\n').pop() ?? ''}`,
    );
  }
}

function manifestFrom(stdout: string): DjangoManifest {
  const last = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as DjangoManifest;
}

/** Seeds a new Django database (a temp SQLite file, or a scratch PostgreSQL database). */
export async function seedDjangoSite(backend: Backend): Promise<DjangoSite> {
  await assertDjangoAvailable();
  let from: string;
  let djangoUrl: string;
  let drop: () => Promise<void>;
  if (backend === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-django-'));
    from = path.join(dir, 'db.sqlite3');
    djangoUrl = `sqlite:${from}`;
    drop = async () => fs.rmSync(dir, { recursive: true, force: true });
  } else {
    const scratch = await createScratchDatabase(PG_ADMIN_URL, 'latchkey_django');
    from = djangoUrl = scratch.url;
    drop = scratch.drop;
  }
  const seeded = await runProcess(DJANGO_PYTHON, [SEED], { env: { ...process.env, LATCHKEY_DJANGO_DATABASE: djangoUrl, PYTHONDONTWRITEBYTECODE: '1' }, cwd: path.dirname(SEED) });
  if (seeded.code !== 0) {
    await drop();
    throw new Error(`seed.py failed (exit ${seeded.code}): ${seeded.stderr.trim()}`);
  }
  return { backend, from, manifest: manifestFrom(seeded.stdout), drop };
}
