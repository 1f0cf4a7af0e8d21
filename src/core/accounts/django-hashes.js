// Django's password formats, read and verified exactly as Django's hashers write them, so that
// accounts imported from a Django site keep their passwords until their first login here
// replaces the hash with Latchkey's own. Plain JavaScript because the hashing worker loads it
// (from src/ in tests, dist/ in production) and so does the import (to report each format).
// Only reading: Latchkey never writes these formats.
import { createHash, pbkdf2, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { argon2d, argon2i, argon2id } from 'hash-wasm';

const pbkdf2Async = promisify(pbkdf2);
/** @type {(password: string, salt: string, keylen: number, options: import('node:crypto').ScryptOptions) => Promise<Buffer>} */
const scryptAsync = /** @type {any} */ (promisify(scrypt));

/**
 * Ceilings on the work factors a stored hash may ask for. The values come from another
 * system's database: a row with absurd factors must not tie up a worker (or its memory) for
 * minutes at each guess. Every default Django ever shipped is far below them.
 */
const LIMITS = {
  pbkdf2Iterations: 10_000_000,
  argon2MemoryKiB: 1_048_576,
  argon2Time: 64,
  argon2Parallelism: 64,
  scryptN: 2 ** 20,
  scryptR: 32,
  scryptP: 16,
};

/**
 * @typedef {{ algorithm: 'pbkdf2_sha256' | 'pbkdf2_sha1', digest: 'sha256' | 'sha1', iterations: number, salt: string, hash: Buffer }} Pbkdf2Hash
 * @typedef {{ algorithm: 'argon2id' | 'argon2i' | 'argon2d', memory: number, time: number, parallelism: number, salt: Buffer, hash: Buffer }} Argon2Hash
 * @typedef {{ algorithm: 'bcrypt_sha256' | 'bcrypt', bcrypt: string }} BcryptHash
 * @typedef {{ algorithm: 'scrypt', n: number, r: number, p: number, salt: string, hash: Buffer }} ScryptHash
 * @typedef {Pbkdf2Hash | Argon2Hash | BcryptHash | ScryptHash} DjangoHash
 */

/** @param {string | undefined} text */
function positiveInt(text) {
  return text !== undefined && /^[1-9]\d{0,9}$/.test(text) ? Number(text) : undefined;
}

/** Standard base64 (padding optional): undefined unless it is exactly that. */
/** @param {string | undefined} text */
function base64(text) {
  if (text === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.length > 0 ? bytes : undefined;
}

/** @param {string} encoded @returns {Pbkdf2Hash | undefined} */
function parsePbkdf2(encoded) {
  const [algorithm, iterText, salt, hashText, ...rest] = encoded.split('$');
  const iterations = positiveInt(iterText);
  const hash = base64(hashText);
  if (rest.length || !iterations || iterations > LIMITS.pbkdf2Iterations || !salt || !hash) return undefined;
  const digest = algorithm === 'pbkdf2_sha256' ? 'sha256' : 'sha1';
  // Django derives a key as long as the digest; any other length is not Django's.
  if (hash.length !== (digest === 'sha256' ? 32 : 20)) return undefined;
  return { algorithm: algorithm === 'pbkdf2_sha256' ? 'pbkdf2_sha256' : 'pbkdf2_sha1', digest, iterations, salt, hash };
}

/**
 * `argon2$argon2id$v=19$m=102400,t=2,p=8$<salt>$<hash>`: "argon2" and argon2-cffi's PHC
 * string (salt and hash unpadded base64). Only version 19 (0x13), which every argon2-cffi
 * Django has supported writes.
 * @param {string} encoded @returns {Argon2Hash | undefined}
 */
function parseArgon2(encoded) {
  const [, variant, version, params, saltText, hashText, ...rest] = encoded.split('$');
  if (rest.length || version !== 'v=19') return undefined;
  if (variant !== 'argon2id' && variant !== 'argon2i' && variant !== 'argon2d') return undefined;
  const match = /^m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,10})$/.exec(params ?? '');
  if (!match) return undefined;
  const [memory, time, parallelism] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const salt = base64(saltText);
  const hash = base64(hashText);
  if (!salt || salt.length < 8 || !hash || hash.length < 4 || hash.length > 1024) return undefined;
  if (time < 1 || time > LIMITS.argon2Time || parallelism < 1 || parallelism > LIMITS.argon2Parallelism) return undefined;
  if (memory < 8 * parallelism || memory > LIMITS.argon2MemoryKiB) return undefined;
  return { algorithm: variant, memory, time, parallelism, salt, hash };
}

/** `bcrypt_sha256$$2b$12$…` and `bcrypt$$2b$12$…`: a prefix and a whole bcrypt hash. */
/** @param {string} encoded @returns {BcryptHash | undefined} */
function parseBcrypt(encoded) {
  const at = encoded.indexOf('$');
  const algorithm = encoded.slice(0, at);
  const hash = encoded.slice(at + 1);
  if (!/^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/.test(hash)) return undefined;
  return { algorithm: algorithm === 'bcrypt_sha256' ? 'bcrypt_sha256' : 'bcrypt', bcrypt: hash };
}

/** Django 4's `scrypt$<n>$<salt>$<r>$<p>$<base64 of 64 bytes>`. */
/** @param {string} encoded @returns {ScryptHash | undefined} */
function parseScrypt(encoded) {
  const [, nText, salt, rText, pText, hashText, ...rest] = encoded.split('$');
  const [n, r, p] = [positiveInt(nText), positiveInt(rText), positiveInt(pText)];
  const hash = base64(hashText);
  if (rest.length || !n || !r || !p || !salt || !hash || hash.length < 16 || hash.length > 1024) return undefined;
  // n must be a power of two above 1 (scrypt's own rule).
  if (n < 2 || (n & (n - 1)) !== 0 || n > LIMITS.scryptN || r > LIMITS.scryptR || p > LIMITS.scryptP) return undefined;
  return { algorithm: 'scrypt', n, r, p, salt, hash };
}

/**
 * Reads a Django password column. Undefined for anything that cannot verify here: an
 * unusable password (`!…`, set_unusable_password), an empty one, a format Latchkey does not
 * read (unsalted MD5/SHA1, crypt), and a hash whose fields are malformed or beyond {@link LIMITS}.
 * @param {string} encoded
 * @returns {DjangoHash | undefined}
 */
export function parseDjangoHash(encoded) {
  const algorithm = encoded.slice(0, Math.max(0, encoded.indexOf('$')));
  switch (algorithm) {
    case 'pbkdf2_sha256':
    case 'pbkdf2_sha1':
      return parsePbkdf2(encoded);
    case 'argon2':
      return parseArgon2(encoded);
    case 'bcrypt_sha256':
    case 'bcrypt':
      return parseBcrypt(encoded);
    case 'scrypt':
      return parseScrypt(encoded);
    default:
      return undefined;
  }
}

/**
 * What a Django password column holds, in one word for reports: the algorithm when it
 * verifies here, `unusable` for `!…` or empty, else `unsupported:<Django's algorithm name>`.
 * @param {string} encoded
 * @returns {string}
 */
export function describeDjangoHash(encoded) {
  if (encoded === '' || encoded.startsWith('!')) return 'unusable';
  const parsed = parseDjangoHash(encoded);
  if (parsed) return parsed.algorithm;
  const name = encoded.includes('$') ? encoded.slice(0, encoded.indexOf('$')) : '';
  return `unsupported:${/^[a-z0-9_]{1,32}$/.test(name) ? name : 'unknown'}`;
}

/** @param {Uint8Array} a @param {Uint8Array} b */
function sameBytes(a, b) {
  return a.length === b.length && timingSafeEqual(a, b);
}

const ARGON2 = { argon2id, argon2i, argon2d };

/**
 * Verifies a password against a parsed Django hash, the way Django's hasher would (the
 * password as UTF-8; Django's salts are text, except Argon2's, which are bytes). Comparisons
 * are constant-time. CPU-heavy: call it in a worker thread, never on the event loop.
 * @param {string} password
 * @param {DjangoHash} parsed
 * @returns {Promise<boolean>}
 */
export async function verifyDjangoHash(password, parsed) {
  switch (parsed.algorithm) {
    case 'pbkdf2_sha256':
    case 'pbkdf2_sha1':
      return sameBytes(await pbkdf2Async(password, parsed.salt, parsed.iterations, parsed.hash.length, parsed.digest), parsed.hash);
    case 'argon2id':
    case 'argon2i':
    case 'argon2d': {
      // hash-wasm refuses an empty password; no login takes one anyway (authenticate refuses it).
      if (password === '') return false;
      const derived = await ARGON2[parsed.algorithm]({
        password,
        salt: parsed.salt,
        iterations: parsed.time,
        parallelism: parsed.parallelism,
        memorySize: parsed.memory,
        hashLength: parsed.hash.length,
        outputType: 'binary',
      });
      return sameBytes(derived, parsed.hash);
    }
    case 'bcrypt_sha256':
      // Django feeds bcrypt the hex SHA-256 of the password, so all of it counts (not 72 bytes).
      return bcrypt.compare(createHash('sha256').update(password, 'utf8').digest('hex'), parsed.bcrypt);
    case 'bcrypt':
      return bcrypt.compare(password, parsed.bcrypt);
    case 'scrypt': {
      const { n, r, p } = parsed;
      // Node refuses more than 32 MiB by default; scrypt needs 128·n·r bytes (plus a margin).
      const derived = await scryptAsync(password, parsed.salt, parsed.hash.length, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 });
      return sameBytes(derived, parsed.hash);
    }
  }
}
