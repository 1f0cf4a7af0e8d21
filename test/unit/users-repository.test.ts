import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { openDatabase } from '../../src/storage/knex.js';
import { migrateLatest } from '../../src/storage/migrate.js';
import { createUserRepository, DuplicateUserError, type UserRepository } from '../../src/storage/users.js';
import { freshDatabase, type TestDatabase } from '../helpers/database.js';
import { BACKENDS } from '../helpers/env.js';
import { parseDatabaseUrl } from '../../src/config.js';

describe.each(BACKENDS)('users repository (%s)', (backend) => {
  let db: TestDatabase;
  let knex: Knex;
  let users: UserRepository;
  beforeEach(async () => {
    db = await freshDatabase(backend);
    knex = openDatabase(parseDatabaseUrl(db.url, process.cwd(), []));
    await migrateLatest(knex);
    users = createUserRepository(knex);
  });
  afterEach(async () => {
    await knex.destroy();
    await db.drop();
  });

  // Two registrations racing past the pre-check meet the unique indexes: the error must still
  // name the field that clashed (knex messages quote the whole INSERT, email column included).
  it('names the right field when two registrations race', async () => {
    const race = async (a: { username: string; email: string }, b: { username: string; email: string }) => {
      const results = await Promise.allSettled([a, b].map((u) => users.create({ ...u, passwordHash: 'x' })));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(failure?.reason).toBeInstanceOf(DuplicateUserError);
      return (failure?.reason as DuplicateUserError).field;
    };
    expect(await race({ username: 'grace', email: 'g1@example.com' }, { username: 'Grace', email: 'g2@example.com' })).toBe('username');
    expect(await race({ username: 'h1', email: 'hopper@example.com' }, { username: 'h2', email: 'HOPPER@example.com' })).toBe('email');
  });

  it('finds users by username in any case, or by email', async () => {
    const created = await users.create({ username: 'Ada', email: 'Ada@Example.com', passwordHash: 'x' });
    expect(created.email).toBe('ada@example.com');
    expect((await users.findByLogin('ada'))?.id).toBe(created.id);
    expect((await users.findByLogin(' ADA@example.COM '))?.id).toBe(created.id);
    expect(await users.findByLogin('nobody')).toBeUndefined();
    expect(await users.findById('not-a-number')).toBeUndefined();
    expect(await users.findById('1e3')).toBeUndefined();
  });

  it('replaces the auth stamp when the password hash is written or the account deactivated, and only then', async () => {
    const created = await users.create({ username: 'stamped', email: null, passwordHash: 'x' });
    expect(created.authStamp).toBe('');
    const stamps = new Set([created.authStamp]);
    const stampNow = async () => (await users.findById(created.id))!.authStamp;
    const expectNew = async (label: string) => {
      const stamp = await stampNow();
      expect(stamps.has(stamp), label).toBe(false);
      stamps.add(stamp);
    };
    const expectSame = async (label: string) => expect(stamps.has(await stampNow()), label).toBe(true);

    await users.update(created.id, { firstName: 'Ada', email: 'stamped@example.com', isStaff: true });
    await users.recordLogin(created.id);
    expect(await users.confirmEmail(created.id, 'stamped@example.com')).toBe('confirmed');
    await expectSame('profile changes, logins and verified addresses keep it');
    await users.update(created.id, { passwordHash: 'y' });
    await expectNew('update with a password hash');
    await users.setPasswordHash(created.id, 'z');
    await expectNew('setPasswordHash');
    await users.update(created.id, { isActive: false });
    await expectNew('update deactivating');
    await users.update(created.id, { isActive: true });
    await expectSame('update reactivating keeps the stamp deactivation set');
    await users.setActive(created.id, false);
    await expectNew('setActive(false)');
    await users.setActive(created.id, true);
    await expectSame('setActive(true)');
  });
});
