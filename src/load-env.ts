import fs from 'node:fs';
import path from 'node:path';

/** Reads ./.env into process.env when present; variables already set win. */
export function loadDotEnv(cwd = process.cwd()): void {
  const file = path.join(cwd, '.env');
  if (fs.existsSync(file)) process.loadEnvFile(file);
}
