import os from 'node:os';
import { Piscina } from 'piscina';
import { describeDjangoHash, parseDjangoHash } from './django-hashes.js';

const PREFIX = 'bcrypt_sha256$';

/** Hashes and verifies passwords off the event loop, in a pool of worker threads. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Constant work whether or not the account exists: pass `undefined` for unknown users. */
  verify(password: string, encoded: string | undefined): Promise<boolean>;
  /** True when the stored hash uses another cost than the configured one, or another format. */
  needsRehash(encoded: string): boolean;
  /**
   * The stored hash's algorithm in Django's words: `bcrypt_sha256` for Latchkey's own (and
   * Django's), another name for a hash imported from Django (`pbkdf2_sha256`, `argon2id`, ...),
   * `unusable` or `unsupported:<name>` for one that never verifies.
   */
  algorithmOf(encoded: string): string;
  /** Tasks waiting for a free worker thread (a metric). */
  queueSize(): number;
  close(): Promise<void>;
}

function costOf(bcryptHash: string): number {
  const match = /^\$2[aby]\$(\d{2})\$/.exec(bcryptHash);
  return match ? Number(match[1]) : 0;
}

/**
 * Creates the pool (one thread per core). Stored hashes look like
 * `bcrypt_sha256$$2b$10$…`, as Django's BCryptSHA256PasswordHasher writes them. `nice` lowers
 * the threads' scheduling priority (Linux; piscina's niceIncrement), so that hashing, which
 * can saturate every core, does not delay the event loop that answers everything else.
 * Hashes imported from Django in its other formats verify too (in the same threads), and
 * always need a rehash; unusable ones (`!…`) never verify.
 */
export function createPasswordHasher({
  cost,
  threads = os.availableParallelism(),
  nice = 0,
  onDemand = false,
}: {
  cost: number;
  threads?: number;
  nice?: number;
  /**
   * No thread until the first password: a one-shot CLI command that hashes none starts none
   * (and none is stopped while still loading its module, which can abort Node).
   */
  onDemand?: boolean;
}): PasswordHasher {
  const pool = new Piscina({
    filename: new URL('./hash-worker.js', import.meta.url).href,
    minThreads: onDemand ? 0 : 1,
    maxThreads: Math.max(1, threads),
    idleTimeout: 60_000,
    ...(nice > 0 && process.platform === 'linux' ? { niceIncrement: nice } : {}),
  });
  let dummy: Promise<string> | undefined;

  async function hash(password: string): Promise<string> {
    return PREFIX + ((await pool.run({ op: 'hash', password, cost })) as string);
  }

  return {
    hash,
    async verify(password, encoded) {
      if (encoded !== undefined && !encoded.startsWith(PREFIX) && parseDjangoHash(encoded)) {
        return (await pool.run({ op: 'verify-django', password, encoded })) as boolean;
      }
      if (encoded === undefined || !encoded.startsWith(PREFIX)) {
        // Unknown user (or an unusable hash): spend the same time as a real check.
        dummy ??= hash('latchkey-dummy-password');
        await pool.run({ op: 'verify', password, hash: (await dummy).slice(PREFIX.length) });
        return false;
      }
      return (await pool.run({ op: 'verify', password, hash: encoded.slice(PREFIX.length) })) as boolean;
    },
    needsRehash(encoded) {
      return !encoded.startsWith(PREFIX) || costOf(encoded.slice(PREFIX.length)) !== cost;
    },
    algorithmOf(encoded) {
      return describeDjangoHash(encoded);
    },
    queueSize() {
      return pool.queueSize;
    },
    async close() {
      await pool.destroy();
    },
  };
}
