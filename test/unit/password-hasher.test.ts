import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createPasswordHasher } from '../../src/core/accounts/password-hasher.js';

/**
 * The password hasher on its own: Django's bcrypt_sha256 format, cost upgrades, the dummy
 * check for unknown users, and no 72-byte truncation (the SHA-256 prehash sees every byte).
 */
describe('password hasher', () => {
  const cost10 = createPasswordHasher({ cost: 10, threads: 2 });
  const cost11 = createPasswordHasher({ cost: 11, threads: 1 });
  afterAll(async () => {
    await cost10.close();
    await cost11.close();
  });

  it("writes Django's bcrypt_sha256 format with the configured cost, and verifies it", async () => {
    const encoded = await cost10.hash('a long enough passphrase');
    expect(encoded.startsWith('bcrypt_sha256$$2b$10$')).toBe(true);
    // bcrypt_sha256$ + 60 characters of bcrypt.
    expect(encoded).toMatch(/^bcrypt_sha256\$\$2b\$10\$[./A-Za-z0-9]{53}$/);
    expect(await cost10.verify('a long enough passphrase', encoded)).toBe(true);
    expect(await cost10.verify('a long enough passphrasE', encoded)).toBe(false);
    expect(await cost10.verify('', encoded)).toBe(false);
    // Salted: the same password hashes differently each time.
    expect(await cost10.hash('a long enough passphrase')).not.toBe(encoded);
  });

  it('asks for a rehash when the stored cost differs from the configured one', async () => {
    const at10 = await cost10.hash('a long enough passphrase');
    const at11 = await cost11.hash('a long enough passphrase');
    expect(at11.startsWith('bcrypt_sha256$$2b$11$')).toBe(true);
    expect(cost11.needsRehash(at10)).toBe(true);
    expect(cost10.needsRehash(at11)).toBe(true);
    expect(cost10.needsRehash(at10)).toBe(false);
    expect(cost11.needsRehash(at11)).toBe(false);
    // A hash in another format (plain bcrypt without the prefix) is never "current".
    expect(cost10.needsRehash(at10.slice('bcrypt_sha256$'.length))).toBe(true);
    // Either hasher verifies either cost: the cost is read from the hash.
    expect(await cost10.verify('a long enough passphrase', at11)).toBe(true);
    expect(await cost11.verify('a long enough passphrase', at10)).toBe(true);
  });

  it('answers false for an unknown user (no hash) after doing a real check', async () => {
    await expect(cost10.verify('a long enough passphrase', undefined)).resolves.toBe(false);
    await expect(cost10.verify('latchkey-dummy-password', undefined)).resolves.toBe(false);
    await expect(cost10.verify('anything', 'not a hash')).resolves.toBe(false);
    await expect(cost10.verify('', undefined)).resolves.toBe(false);
  });

  it('does not truncate at 72 bytes: passwords sharing their first 72 bytes differ', async () => {
    const pairs: Array<[string, string]> = [
      ['a'.repeat(72) + 'X', 'a'.repeat(72) + 'Y'],
      // 36 two-byte characters are 72 bytes.
      ['é'.repeat(36) + '1', 'é'.repeat(36) + '2'],
      ['a'.repeat(100), 'a'.repeat(101)],
    ];
    for (const [first, second] of pairs) {
      expect(Buffer.from(first).subarray(0, 72).equals(Buffer.from(second).subarray(0, 72))).toBe(true);
      const encoded = await cost10.hash(first);
      expect(await cost10.verify(first, encoded)).toBe(true);
      expect(await cost10.verify(second, encoded)).toBe(false);
    }
  });

  it.runIf(process.platform === 'linux')('runs its threads at the configured niceness (PASSWORD_HASH_NICE)', async () => {
    /** Niceness of every thread of this process (field 19 of /proc/self/task/<tid>/stat). */
    const niceness = () =>
      fs.readdirSync('/proc/self/task').map((tid) => {
        const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
      });
    const base = Math.max(...niceness());
    const nice = createPasswordHasher({ cost: 10, threads: 1, nice: 7 });
    try {
      expect(await nice.verify('a long enough passphrase', await nice.hash('a long enough passphrase'))).toBe(true);
      const after = niceness();
      expect(after.filter((n) => n === base + 7)).toHaveLength(1);
      // The event loop's own thread keeps its priority.
      expect(after[0]).toBe(base);
    } finally {
      await nice.close();
    }
  });
});
