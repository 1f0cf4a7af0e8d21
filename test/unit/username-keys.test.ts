import type { Knex } from 'knex';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrations } from '../../migrations/index.js';
import { parseDatabaseUrl } from '../../src/config.js';
import { openDatabase } from '../../src/storage/knex.js';
import { migrateLatest } from '../../src/storage/migrate.js';
import { createUserRepository, DuplicateUserError, type UserRepository } from '../../src/storage/users.js';
import { freshDatabase, type TestDatabase } from '../helpers/database.js';
import { BACKENDS } from '../helpers/env.js';

/**
 * One person, one username, on both databases: usernames compare by NFKC with full case
 * folding (not by SQL lower(), ASCII-only on SQLite) and look-alikes (TR39 skeletons) are
 * refused; the migration that brings the key to existing rows refuses to merge collisions.
 */
describe.each(BACKENDS)('username keys (%s)', (backend) => {
  let db: TestDatabase;
  let knex: Knex;
  let users: UserRepository;
  beforeEach(async () => {
    db = await freshDatabase(backend);
    knex = openDatabase(parseDatabaseUrl(db.url, process.cwd(), []));
  });
  afterEach(async () => {
    await knex.destroy();
    await db.drop();
  });

  const refusal = async (username: string) => {
    const error = await users.create({ username, email: null, passwordHash: 'x' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error, username).toBeInstanceOf(DuplicateUserError);
    return error as DuplicateUserError;
  };

  describe('with every migration', () => {
    beforeEach(async () => {
      await migrateLatest(knex);
      users = createUserRepository(knex);
    });

    it('treats non-ASCII names in another case as one name, and finds them by any case', async () => {
      const ärger = await users.create({ username: 'Ärger', email: null, passwordHash: 'x' });
      expect((await refusal('ärger')).lookalike).toBe(false);
      expect((await refusal('ÄRGER')).lookalike).toBe(false);
      for (const login of ['Ärger', 'ärger', 'ÄRGER', 'A\u0308rger']) expect((await users.findByLogin(login))?.id, login).toBe(ärger.id);
      await users.create({ username: 'Straße', email: null, passwordHash: 'x' });
      expect((await refusal('STRASSE')).lookalike).toBe(false);
      expect(await users.count()).toBe(2);
    });

    it('stores usernames in NFKC: fullwidth and decomposed forms are the plain name', async () => {
      const decomposed = await users.create({ username: 'Zoe\u0308', email: null, passwordHash: 'x' });
      expect(decomposed.username).toBe('Zoë');
      await users.create({ username: 'root', email: null, passwordHash: 'x' });
      expect((await refusal('ｒｏｏｔ')).field).toBe('username');
      expect((await refusal('ＲＯＯＴ')).lookalike).toBe(false);
    });

    it('refuses look-alikes of an existing name in another script, as a look-alike', async () => {
      await users.create({ username: 'root', email: null, passwordHash: 'x' });
      for (const lookalike of ['r\u043e\u043et', 'R\u043eOT', 'r\u03bf\u03bft']) {
        const error = await refusal(lookalike);
        expect(error.lookalike, lookalike).toBe(true);
        expect(error.field).toBe('username');
      }
      // Renaming into a look-alike is refused the same way.
      const other = await users.create({ username: 'other', email: null, passwordHash: 'x' });
      await expect(users.update(other.id, { username: 'r\u043e\u043et' })).rejects.toMatchObject({ field: 'username', lookalike: true });
      expect((await users.findById(other.id))?.username).toBe('other');
    });

    it('lets the unique indexes settle a race of look-alikes', async () => {
      const results = await Promise.allSettled(['paypal', 'p\u0430yp\u0430l'].map((username) => users.create({ username, email: null, passwordHash: 'x' })));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(failure?.reason).toBeInstanceOf(DuplicateUserError);
    });

    it('stores emails in NFKC, lower-cased: a fullwidth address is the plain one', async () => {
      await users.create({ username: 'mail1', email: 'Ann@Example.com', passwordHash: 'x' });
      await expect(users.create({ username: 'mail2', email: 'ａｎｎ@example.com', passwordHash: 'x' })).rejects.toMatchObject({ field: 'email' });
      expect((await users.findByEmail('ＡＮＮ@EXAMPLE.COM'))?.username).toBe('mail1');
    });

    it('searches usernames by their key, in any script', async () => {
      await users.create({ username: 'Ärger', email: null, passwordHash: 'x' });
      const found = await users.list({ offset: 0, limit: 10, search: 'ÄRG', ordering: [] });
      expect(found.users.map((u) => u.username)).toEqual(['Ärger']);
    });
  });

  describe('migration 20261207002000_username_keys', () => {
    const BEFORE = migrations.findIndex((m) => m.name === '20261207002000_username_keys');
    const migrateBefore = async () => {
      const source: Knex.MigrationSource<string> = {
        getMigrations: async () => migrations.slice(0, BEFORE).map((m) => m.name),
        getMigrationName: (name) => name,
        getMigration: async (name) => migrations.find((m) => m.name === name)!.migration,
      };
      await knex.migrate.latest({ migrationSource: source, tableName: 'knex_migrations' });
    };
    const insertRaw = (id: number, username: string, email: string | null = null) =>
      knex('users').insert({ id, username, email, password_hash: 'x', date_joined: id, updated_at: id });

    it('stops, naming the accounts, when existing usernames are one name under the new key, and changes nothing', async () => {
      expect(BEFORE).toBeGreaterThan(0);
      await migrateBefore();
      // On PostgreSQL lower() folds "Ä" (so the old index already refused it): collide by NFKC there.
      const second = backend === 'sqlite' ? 'ärger' : 'Ａ\u0308rger';
      await insertRaw(1, 'Ärger');
      await insertRaw(2, second);
      await insertRaw(3, 'fine');
      await expect(migrateLatest(knex)).rejects.toThrow(new RegExp(`"Ärger" \\(id 1\\), "${second}" \\(id 2\\) are one name`));
      expect(await knex('users').orderBy('id').pluck('username')).toEqual(['Ärger', second, 'fine']);
      expect(await knex.schema.hasColumn('users', 'username_key')).toBe(false);
    });

    it('keys existing rows, keeps existing look-alikes (the oldest keeps the skeleton) and refuses new ones', async () => {
      await migrateBefore();
      await insertRaw(1, 'root', 'Root@Example.com');
      await insertRaw(2, 'r\u043e\u043et');
      await insertRaw(3, 'Zoe\u0308');
      await migrateLatest(knex);
      users = createUserRepository(knex);
      const rows = await knex('users').orderBy('id').select('username', 'username_key', 'username_skeleton', 'email');
      expect(rows).toEqual([
        { username: 'root', username_key: 'root', username_skeleton: 'root', email: 'root@example.com' },
        { username: 'r\u043e\u043et', username_key: 'r\u043e\u043et', username_skeleton: null, email: null },
        { username: 'Zoë', username_key: 'zoë', username_skeleton: expect.any(String), email: null },
      ]);
      expect((await users.findByLogin('ZOË'))?.id).toBe(3);
      expect((await refusal('r\u043eot')).lookalike).toBe(true);
    });
  });
});
