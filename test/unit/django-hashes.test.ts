import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeDjangoHash, parseDjangoHash, verifyDjangoHash } from '../../src/core/accounts/django-hashes.js';
import { createPasswordHasher } from '../../src/core/accounts/password-hasher.js';
import { seedDjangoSite, type DjangoSite, type DjangoUser } from '../helpers/django.js';

/**
 * Django's password formats, with hashes real Django 3.2 wrote (the fixture's seed.py, plus
 * argon2i from argon2-cffi and Django 4's scrypt format): each verifies with its password
 * only, through the worker pool as logins do, and always asks for a rehash.
 */
describe('Django password hashes', () => {
  let site: DjangoSite;
  const hasher = createPasswordHasher({ cost: 10, threads: 2 });
  const byHasher = (name: string): DjangoUser => {
    const user = site.manifest.users.find((u) => u.hasher === name);
    if (!user) throw new Error(`the fixture has no ${name} user`);
    return user;
  };
  beforeAll(async () => {
    site = await seedDjangoSite('sqlite');
  });
  afterAll(async () => {
    await hasher.close();
    await site?.drop();
  });

  const FORMATS = ['pbkdf2_sha256', 'pbkdf2_sha1', 'argon2id', 'argon2i', 'bcrypt_sha256', 'bcrypt', 'scrypt'] as const;

  it.each(FORMATS)('%s: the right password verifies (in the worker pool), wrong ones do not', async (name) => {
    const user = byHasher(name);
    const password = user.password as string;
    expect(hasher.algorithmOf(user.encoded)).toBe(name);
    expect(await hasher.verify(password, user.encoded)).toBe(true);
    expect(await hasher.verify(`${password}x`, user.encoded)).toBe(false);
    expect(await hasher.verify(password.slice(0, -1), user.encoded)).toBe(false);
    expect(await hasher.verify(password.toUpperCase(), user.encoded)).toBe(false);
    expect(await hasher.verify('', user.encoded)).toBe(false);
    // Another user's password, with a hash of the same format, is wrong too.
    const other = site.manifest.users.find((u) => u.password !== null && u.username !== user.username);
    expect(await hasher.verify(other?.password as string, user.encoded)).toBe(false);
    // Never Latchkey's format: the first successful login replaces it.
    expect(hasher.needsRehash(user.encoded)).toBe(true);
  });

  it('reads the whole non-ASCII password as UTF-8, as Django does', async () => {
    const alice = site.manifest.users.find((u) => u.username === 'alice') as DjangoUser;
    expect(alice.password).toMatch(/[äö]/);
    expect(await hasher.verify(alice.password as string, alice.encoded)).toBe(true);
    // The same letters without their accents (what a Latin-1 mix-up would turn them into) fail.
    expect(await hasher.verify((alice.password as string).normalize('NFD').replace(/\p{M}/gu, ''), alice.encoded)).toBe(false);
  });

  it('never verifies an unusable password, whatever is typed', async () => {
    const heidi = byHasher('unusable');
    expect(heidi.encoded.startsWith('!')).toBe(true);
    expect(hasher.algorithmOf(heidi.encoded)).toBe('unusable');
    expect(parseDjangoHash(heidi.encoded)).toBeUndefined();
    for (const guess of ['', heidi.encoded, heidi.encoded.slice(1), 'password']) {
      expect(await hasher.verify(guess, heidi.encoded)).toBe(false);
    }
    expect(await hasher.verify('', '')).toBe(false);
  });

  it('verifies the parsed hash directly too, with a constant-time compare of the whole digest', async () => {
    const user = byHasher('pbkdf2_sha256');
    const parsed = parseDjangoHash(user.encoded);
    expect(parsed).toMatchObject({ algorithm: 'pbkdf2_sha256', digest: 'sha256', iterations: 260000 });
    expect(await verifyDjangoHash(user.password as string, parsed!)).toBe(true);
    // One bit of the stored digest changed: no longer a match.
    const [algorithm, iterations, salt, digest] = user.encoded.split('$') as [string, string, string, string];
    const flipped = Buffer.from(digest, 'base64');
    flipped[31] = (flipped[31] ?? 0) ^ 1;
    const tampered = [algorithm, iterations, salt, flipped.toString('base64')].join('$');
    expect(await hasher.verify(user.password as string, tampered)).toBe(false);
    // Another salt: no longer a match.
    expect(await hasher.verify(user.password as string, [algorithm, iterations, `${salt}x`, digest].join('$'))).toBe(false);
  });

  it('refuses formats it does not read, and malformed or absurd hashes, as never verifying', async () => {
    const pbkdf2 = byHasher('pbkdf2_sha256').encoded;
    const argon = byHasher('argon2id').encoded;
    const scrypt = byHasher('scrypt').encoded;
    const rejected: Array<[string, string]> = [
      // Django's unsalted and weak hashers: not read, the account needs a password reset.
      ['md5$salt$5f4dcc3b5aa765d61d8327deb882cf99', 'unsupported:md5'],
      ['sha1$salt$5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8', 'unsupported:sha1'],
      ['unsalted_md5$$5f4dcc3b5aa765d61d8327deb882cf99', 'unsupported:unsalted_md5'],
      ['crypt$$abN/qM.L/H8EQ', 'unsupported:crypt'],
      ['plain text password', 'unsupported:unknown'],
      // Work factors from a hostile row: no worker is tied up for minutes.
      [pbkdf2.replace('$260000$', '$999999999$'), 'unsupported:pbkdf2_sha256'],
      [pbkdf2.replace('$260000$', '$0$'), 'unsupported:pbkdf2_sha256'],
      [argon.replace('m=102400', 'm=4000000'), 'unsupported:argon2'],
      [argon.replace('v=19', 'v=16'), 'unsupported:argon2'],
      [scrypt.replace('scrypt$16384$', 'scrypt$16383$'), 'unsupported:scrypt'],
      [scrypt.replace('scrypt$16384$', `scrypt$${2 ** 24}$`), 'unsupported:scrypt'],
      // Broken fields.
      [`${pbkdf2}$extra`, 'unsupported:pbkdf2_sha256'],
      [pbkdf2.slice(0, -8), 'unsupported:pbkdf2_sha256'],
      ['bcrypt$$2b$12$short', 'unsupported:bcrypt'],
    ];
    for (const [encoded, description] of rejected) {
      expect(describeDjangoHash(encoded), encoded).toBe(description);
      expect(parseDjangoHash(encoded), encoded).toBeUndefined();
      expect(await hasher.verify('password', encoded), encoded).toBe(false);
    }
  });
});
