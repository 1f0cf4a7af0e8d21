// Runs in a worker thread (piscina): bcrypt in pure JavaScript blocks whatever thread it runs
// on, so it must never run on the event loop that serves requests. Kept as plain JavaScript so
// that the same file loads from src/ (tests) and dist/ (npm start).
import { createHash } from 'node:crypto';
import bcrypt from 'bcryptjs';

/**
 * Django's BCryptSHA256 idea: bcrypt reads only 72 bytes, so feed it a SHA-256 hex digest.
 * @param {string} password
 */
function prehash(password) {
  return createHash('sha256').update(password, 'utf8').digest('hex');
}

/**
 * @param {{ op: 'hash', password: string, cost: number } | { op: 'verify', password: string, hash: string }} task
 * @returns {Promise<string | boolean>}
 */
export default async function run(task) {
  if (task.op === 'hash') {
    return bcrypt.hash(prehash(task.password), task.cost);
  }
  return bcrypt.compare(prehash(task.password), task.hash);
}
