// Runs in a worker thread (piscina): bcrypt in pure JavaScript blocks whatever thread it runs
// on, so it must never run on the event loop that serves requests. Kept as plain JavaScript so
// that the same file loads from src/ (tests) and dist/ (npm start).
import { createHash } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { parseDjangoHash, verifyDjangoHash } from './django-hashes.js';

/**
 * Django's BCryptSHA256 idea: bcrypt reads only 72 bytes, so feed it a SHA-256 hex digest.
 * @param {string} password
 */
function prehash(password) {
  return createHash('sha256').update(password, 'utf8').digest('hex');
}

/**
 * `verify-django`: a hash imported from Django in another format (PBKDF2, Argon2, bcrypt,
 * scrypt), parsed here rather than sent parsed, since only strings cross to the thread intact.
 * @param {{ op: 'hash', password: string, cost: number } | { op: 'verify', password: string, hash: string } | { op: 'verify-django', password: string, encoded: string }} task
 * @returns {Promise<string | boolean>}
 */
export default async function run(task) {
  if (task.op === 'hash') {
    return bcrypt.hash(prehash(task.password), task.cost);
  }
  if (task.op === 'verify-django') {
    const parsed = parseDjangoHash(task.encoded);
    return parsed ? verifyDjangoHash(task.password, parsed) : false;
  }
  return bcrypt.compare(prehash(task.password), task.hash);
}
