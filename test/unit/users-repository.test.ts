import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { openDatabase } from '../../src/db/knex.js';
import { migrateLatest } from '../../src/db/migrate.js';
import { createUserRepository, DuplicateUserError, type UserRepository } from '../../src/repositories/users.js';
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
});
