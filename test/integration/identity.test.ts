import path from 'node:path';
import { expect, it } from 'vitest';
import { describeOnBackends } from '../helpers/fixture.js';
import { runProcess } from '../helpers/process.js';
import { PASSWORD } from '../helpers/rp.js';

/**
 * One person, one username, on SQLite and PostgreSQL alike, on every way in: registration
 * (REST and the legacy endpoint), the admin pages, the CLI; and every sign-in finds the
 * account by any case or compatibility form of its name. Look-alikes are refused per field.
 */
const MAIN = path.resolve(import.meta.dirname, '../../dist/src/cli/main.js');

describeOnBackends('one identity per person (%s)', (fx) => {
  const register = (username: string, email?: string) => fx.api('POST', '/api/users/', { json: { username, password: PASSWORD, email: email ?? `${encodeURIComponent(username)}@example.com` } });

  it('refuses a non-ASCII name in another case, and the first one signs in by any case', async () => {
    const first = await register('Ärger', 'aerger1@example.com');
    expect(first.status, first.text).toBe(201);
    for (const again of ['ärger', 'ÄRGER', 'A\u0308rger']) {
      const answer = await register(again, `${Math.random()}@example.com`);
      expect(answer.status, answer.text).toBe(409);
      expect(answer.json).toMatchObject({ error: 'conflict', error_description: 'A user with that username already exists.', fields: { username: ['A user with that username already exists.'] } });
    }
    for (const login of ['Ärger', 'ärger', 'ÄRGER']) await fx.apiLogin(login);
    const legacy = await fx.api('POST', '/users/login/', { form: { username: 'ärger', password: PASSWORD } });
    expect(legacy.status, legacy.text).toBe(200);
  });

  it('refuses a fullwidth copy and a Cyrillic look-alike of an existing name', async () => {
    const root = await register('root', 'root@example.com');
    expect(root.status, root.text).toBe(201);
    const fullwidth = await register('ｒｏｏｔ', 'fullwidth@example.com');
    expect(fullwidth.status, fullwidth.text).toBe(409);
    expect(fullwidth.json['fields']).toEqual({ username: ['A user with that username already exists.'] });
    for (const lookalike of ['r\u043e\u043et', 'R\u043e\u043eT']) {
      const answer = await register(lookalike, `${Math.random()}@example.com`);
      expect(answer.status, answer.text).toBe(409);
      expect(answer.json).toMatchObject({ error: 'conflict', fields: { username: ['A user with a username that looks the same already exists.'] } });
    }
    const legacy = await fx.api('POST', '/users/register/', { form: { username: 'r\u043e\u043et', password: PASSWORD, confirm_password: PASSWORD } });
    expect(legacy.status, legacy.text).toBe(409);
    const listed = await fx.api('POST', '/api/token/', { json: { username: 'ｒｏｏｔ', password: PASSWORD } });
    expect(listed.status, 'the fullwidth form signs in as root').toBe(200);
  });

  it('stores the NFKC form a person typed on the admin pages, and refuses look-alikes there', async () => {
    const staff = await fx.makeUser({ isStaff: true, isSuperuser: true });
    const agent = await fx.signIn(staff);
    const made = await fx.submit(agent, '/admin/users/new', '/admin/users/new', { username: 'ｗｉｌｍａ', password: PASSWORD, is_active: 'on' });
    expect(made.status, made.html.slice(0, 300)).toBe(303);
    const found = await fx.server.latchkey.storage.users.findByLogin('WILMA');
    expect(found?.username).toBe('wilma');
    const lookalike = await fx.submit(agent, '/admin/users/new', '/admin/users/new', { username: 'w\u0456lma', password: PASSWORD });
    expect(lookalike.status).toBe(409);
    expect(lookalike.html).toContain('A user with a username that looks the same already exists.');
  });

  it('refuses a look-alike superuser from the CLI, in one line', async () => {
    await fx.makeUser({ username: 'admin' });
    const result = await runProcess(process.execPath, [MAIN, 'createsuperuser', '--username', '\u0430dmin', '--email', 'cyr@example.com', '--password', PASSWORD], {
      env: { ...process.env, DATABASE_URL: fx.server.db.url, BCRYPT_COST: '10' },
      cwd: path.dirname(MAIN),
    });
    expect(result.code, result.stderr).not.toBe(0);
    expect(result.stderr).toBe('error: A user with a username that looks the same already exists.\n');
  });
});
