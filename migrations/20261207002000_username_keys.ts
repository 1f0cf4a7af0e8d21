import type { Knex } from 'knex';
import { normalizeEmail, normalizeUsername, usernameKey, usernameSkeleton } from '../src/storage/identity-keys.js';

/**
 * One person, one username, on both databases. Until now uniqueness was `lower(username)`,
 * which is ASCII-only on SQLite: "Ärger" and "ärger" could both register there, and the
 * first could never sign in (the login folded it in JavaScript). Usernames are now stored in
 * NFKC and compared through `username_key` (NFKC_Casefold, computed by the application), and
 * `username_skeleton` (the TR39 confusable skeleton) refuses look-alikes ("rооt" in Cyrillic
 * beside "root"). Emails are stored in NFKC too.
 *
 * Existing rows that are one identity under the new key cannot be merged by a migration
 * (which account would keep the name?): it stops, naming them, and nothing is changed.
 * Existing look-alikes are kept: the oldest keeps the skeleton, the others get none (NULLs
 * never collide), so nobody is locked out and no new look-alike can join them.
 */
export async function up(knex: Knex): Promise<void> {
  const rows = (await knex('users').select('id', 'username', 'email').orderBy('id')) as Array<{ id: number; username: string; email: string | null }>;
  const collisions: string[] = [];
  const byKey = new Map<string, typeof rows>();
  const byEmail = new Map<string, typeof rows>();
  for (const row of rows) {
    const key = usernameKey(row.username);
    byKey.set(key, [...(byKey.get(key) ?? []), row]);
    const email = normalizeEmail(row.email);
    if (email) byEmail.set(email, [...(byEmail.get(email) ?? []), row]);
  }
  const named = (group: typeof rows) => group.map((r) => `"${r.username}" (id ${r.id})`).join(', ');
  for (const group of byKey.values()) if (group.length > 1) collisions.push(`the usernames of ${named(group)} are one name`);
  for (const [email, group] of byEmail) if (group.length > 1) collisions.push(`${named(group)} share the email ${email}`);
  if (collisions.length) {
    throw new Error(
      `migration 20261207002000_username_keys: usernames and emails compare by Unicode NFKC and case folding now, and ${collisions.join('; ')}. ` +
        'Rename them (or merge by hand) with the previous version, then start again; nothing was changed.',
    );
  }

  await knex.schema.alterTable('users', (t) => {
    // Every write sets it; the default only lets the column be added to existing rows.
    t.string('username_key', 1024).notNullable().defaultTo('');
    t.string('username_skeleton', 1024).nullable();
  });
  const skeletons = new Set<string>();
  for (const row of rows) {
    const skeleton = usernameSkeleton(row.username);
    const free = !skeletons.has(skeleton);
    skeletons.add(skeleton);
    await knex('users')
      .where({ id: row.id })
      .update({
        username: normalizeUsername(row.username),
        username_key: usernameKey(row.username),
        username_skeleton: free ? skeleton : null,
        email: normalizeEmail(row.email),
      });
  }
  await knex.raw('DROP INDEX users_username_lower_unique');
  await knex.raw('CREATE UNIQUE INDEX users_username_key_unique ON users (username_key)');
  await knex.raw('CREATE UNIQUE INDEX users_username_skeleton_unique ON users (username_skeleton)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX users_username_skeleton_unique');
  await knex.raw('DROP INDEX users_username_key_unique');
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('username_skeleton');
    t.dropColumn('username_key');
  });
  await knex.raw('CREATE UNIQUE INDEX users_username_lower_unique ON users (lower(username))');
}
