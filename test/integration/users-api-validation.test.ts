import { describe, expect, it } from 'vitest';
import type { User } from '../../src/storage/users.js';
import { PASSWORD } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { useUsersApi, type Json, asUser, asPage, fieldsOf } from '../helpers/users-api.js';

/**
 * The users REST API: pagination, search and ordering; validation and uniqueness (409); trailing slashes; PUT and PATCH semantics.
 */
describeOnBackends('users REST API over HTTP (%s)', (fx) => {
  const ctx = useUsersApi(fx);
  const { api, fixtureUser, unique, row, tokenAnswer, apiLogin } = ctx;

  // ------------------------------------------------------- pagination, search, ordering

  describe('listing', () => {
    it('paginates with count, absolute next/previous links that work, and a 404 past the end', async () => {
      const prefix = unique('page');
      const made: User[] = [];
      for (let i = 0; i < 25; i++) made.push(await fixtureUser({ username: `${prefix}_${String(i).padStart(2, '0')}`, email: null }));

      const first = await api('GET', `/api/users/?search=${prefix}&page_size=10`, { token: ctx.staffToken });
      expect(first.status, first.text).toBe(200);
      const p1 = asPage(first);
      expect(Object.keys(p1).sort()).toEqual(['count', 'next', 'previous', 'results']);
      expect(p1.count).toBe(25);
      expect(p1.results).toHaveLength(10);
      expect(p1.previous).toBeNull();
      expect(p1.next).not.toBeNull();
      const next = new URL(p1.next!);
      expect(next.origin).toBe(fx.server.url);
      expect(next.pathname).toBe('/api/users/');
      expect(next.searchParams.get('page')).toBe('2');
      expect(next.searchParams.get('page_size')).toBe('10');
      expect(next.searchParams.get('search')).toBe(prefix);

      const second = await api('GET', p1.next!, { token: ctx.staffToken });
      expect(second.status, second.text).toBe(200);
      const p2 = asPage(second);
      expect(p2.count).toBe(25);
      expect(p2.results).toHaveLength(10);
      expect(p2.previous).not.toBeNull();
      expect(new URL(p2.previous!).origin).toBe(fx.server.url);

      const back = await api('GET', p2.previous!, { token: ctx.staffToken });
      expect(asPage(back).results.map((u) => u.id)).toEqual(p1.results.map((u) => u.id));

      const third = await api('GET', p2.next!, { token: ctx.staffToken });
      const p3 = asPage(third);
      expect(p3.results).toHaveLength(5);
      expect(p3.next).toBeNull();
      expect(new URL(p3.previous!).searchParams.get('page')).toBe('2');

      // Every user exactly once, in the default order (id).
      const seen = [...p1.results, ...p2.results, ...p3.results].map((u) => u.id);
      expect(seen).toEqual(made.map((u) => u.id));

      const past = await api('GET', `/api/users/?search=${prefix}&page_size=10&page=4`, { token: ctx.staffToken });
      expect(past.status, past.text).toBe(404);

      // Default page size is 20.
      const dflt = asPage(await api('GET', `/api/users/?search=${prefix}`, { token: ctx.staffToken }));
      expect(dflt.results).toHaveLength(20);
      expect(new URL(dflt.next!).searchParams.get('page')).toBe('2');
    });

    it.each(['0', '-1', 'abc', '1.5', '%20'])('answers 400 to page and page_size = %s', async (value) => {
      for (const param of ['page', 'page_size']) {
        const answer = await api('GET', `/api/users/?${param}=${value}`, { token: ctx.staffToken });
        expect(answer.status, `${param}=${value}: ${answer.text}`).toBe(400);
        expect(answer.json['error']).toBe('invalid_request');
      }
    });

    it('caps page_size at 100', async () => {
      const { users } = fx.server.latchkey.storage;
      while ((await users.count()) < 105) await fixtureUser();
      const total = await users.count();
      const answer = await api('GET', '/api/users/?page_size=1000', { token: ctx.staffToken });
      expect(answer.status, answer.text).toBe(200);
      const page = asPage(answer);
      expect(page.count).toBe(total);
      expect(page.results).toHaveLength(100);
      expect(page.next).not.toBeNull();
      const rest = asPage(await api('GET', page.next!, { token: ctx.staffToken }));
      expect(rest.results).toHaveLength(Math.min(100, total - 100));
      expect(rest.results[0]?.id).not.toBe(page.results[0]?.id);
      const ids = new Set([...page.results, ...rest.results].map((u) => u.id));
      expect(ids.size).toBe(page.results.length + rest.results.length);
    });

    it('searches username, email, first and last name case-insensitively', async () => {
      const tag = unique('srch');
      const byName = await fixtureUser({ username: `${tag}_name`, email: null });
      const byEmail = await fixtureUser({ email: `${tag}_mail@example.org` });
      const byFirst = await fixtureUser({ firstName: `${tag}First` });
      const byLast = await fixtureUser({ lastName: `${tag}Last` });
      const ids = async (search: string) => {
        const answer = await api('GET', `/api/users/?search=${encodeURIComponent(search)}&page_size=100`, { token: ctx.staffToken });
        expect(answer.status, answer.text).toBe(200);
        expect(asPage(answer).count).toBe(asPage(answer).results.length);
        return asPage(answer).results.map((u) => u.id).sort((x, y) => x - y);
      };
      const all = [byName, byEmail, byFirst, byLast].map((u) => u.id).sort((x, y) => x - y);
      expect(await ids(tag)).toEqual(all);
      expect(await ids(tag.toUpperCase())).toEqual(all);
      expect(await ids(`${tag}_NAME`)).toEqual([byName.id]);
      expect(await ids(`${tag}_mail@EXAMPLE`)).toEqual([byEmail.id]);
      expect(await ids(`${tag}first`)).toEqual([byFirst.id]);
      expect(await ids(`${tag}LAST`)).toEqual([byLast.id]);
      expect(await ids(`${tag}nothing`)).toEqual([]);
    });

    it('treats %, _ and \\ in a search as literal characters', async () => {
      const tag = unique('lit').toLowerCase();
      const percent = await fixtureUser({ firstName: `Fifty%Off${tag}` });
      await fixtureUser({ firstName: `FiftyXOff${tag}` });
      const underscore = await fixtureUser({ firstName: `Qz_Qw${tag}` });
      await fixtureUser({ firstName: `QzXQw${tag}` });
      const backslash = await fixtureUser({ lastName: `Back\\Slash${tag}` });
      await fixtureUser({ lastName: `BackXSlash${tag}` });
      const ids = async (search: string) => {
        const answer = await api('GET', `/api/users/?search=${encodeURIComponent(search)}&page_size=100`, { token: ctx.staffToken });
        expect(answer.status, answer.text).toBe(200);
        return asPage(answer).results.map((u) => u.id);
      };
      // Only this one user anywhere has a % (fixtures never do), so '%' alone finds only it.
      expect(await ids('%')).toEqual([percent.id]);
      expect(await ids(`y%o`)).toEqual([percent.id]);
      expect(await ids(`qz_qw`)).toEqual([underscore.id]);
      expect(await ids('\\')).toEqual([backslash.id]);
      expect(await ids(`k\\s`)).toEqual([backslash.id]);
      expect(await ids('%%')).toEqual([]);
    });

    it('orders by -username, date_joined and several fields; refuses unknown fields with 400', async () => {
      const prefix = unique('ord');
      const made: User[] = [];
      // Letters chosen so every collation agrees on their order.
      const lastNames: Record<string, string> = { a: 'zeta', b: 'alpha', c: 'zeta', d: 'alpha', e: 'alpha' };
      for (const letter of ['c', 'a', 'e', 'b', 'd']) {
        made.push(await fixtureUser({ username: `${prefix}${letter}`, email: null, lastName: lastNames[letter] ?? '' }));
      }
      const list = async (ordering: string) => {
        const answer = await api('GET', `/api/users/?search=${prefix}&ordering=${encodeURIComponent(ordering)}`, { token: ctx.staffToken });
        expect(answer.status, answer.text).toBe(200);
        return asPage(answer).results;
      };
      expect((await list('-username')).map((u) => u.username)).toEqual(['e', 'd', 'c', 'b', 'a'].map((l) => `${prefix}${l}`));
      expect((await list('username')).map((u) => u.username)).toEqual(['a', 'b', 'c', 'd', 'e'].map((l) => `${prefix}${l}`));
      const byJoined = await list('date_joined');
      expect(byJoined.map((u) => u.id)).toEqual(made.map((u) => u.id));
      const joined = byJoined.map((u) => Date.parse(u.date_joined));
      expect(joined).toEqual([...joined].sort((x, y) => x - y));
      expect((await list('-date_joined')).map((u) => Date.parse(u.date_joined))).toEqual([...joined].reverse());
      expect((await list('last_name,-username')).map((u) => u.username)).toEqual(['e', 'd', 'b', 'c', 'a'].map((l) => `${prefix}${l}`));

      // ordering is kept in the page links.
      const paged = asPage(await api('GET', `/api/users/?search=${prefix}&ordering=-username&page_size=2`, { token: ctx.staffToken }));
      expect(new URL(paged.next!).searchParams.get('ordering')).toBe('-username');
      const page2 = asPage(await api('GET', paged.next!, { token: ctx.staffToken }));
      expect(page2.results.map((u) => u.username)).toEqual(['c', 'b'].map((l) => `${prefix}${l}`));

      for (const bad of ['password_hash', 'bogus', '-', 'username,', 'is_staff', 'username;drop table users', '--username']) {
        const answer = await api('GET', `/api/users/?ordering=${encodeURIComponent(bad)}`, { token: ctx.staffToken });
        expect(answer.status, `ordering=${bad}: ${answer.text}`).toBe(400);
        expect(answer.json['error']).toBe('invalid_request');
      }
      expect(await fx.server.latchkey.storage.users.count()).toBeGreaterThan(0);
    });
  });

  // ------------------------------------------------------------------ validation and 409

  describe('validation', () => {
    const long = 'x'.repeat(151);
    it.each<[string, Json, string[]]>([
      ['a short password', { password: 'short12' }, ['password']],
      ['a bad email', { email: 'not-an-email' }, ['email']],
      ['an email with spaces', { email: 'a b@example.com' }, ['email']],
      ['bad username characters', { username: 'bad user!' }, ['username']],
      ['a username with a slash', { username: 'a/b' }, ['username']],
      ['a 151-character username', { username: long }, ['username']],
      ['a missing username', { username: undefined }, ['username']],
      ['a missing password', { password: undefined }, ['password']],
      ['an empty username and password', { username: '', password: '' }, ['username', 'password']],
      ['a numeric username', { username: 12345 }, ['username']],
      ['a numeric password', { password: 123456789 }, ['password']],
      ['a boolean email', { email: true }, ['email']],
      ['an object first_name', { first_name: { a: 1 } }, ['first_name']],
      ['an array last_name', { last_name: ['x'] }, ['last_name']],
      ['a 151-character first_name', { first_name: long }, ['first_name']],
      ['an unknown field', { favourite_colour: 'blue' }, ['favourite_colour']],
      ['current_password on create', { current_password: PASSWORD }, ['current_password']],
      ['several problems at once', { username: 'no spaces allowed', password: 'short', email: 'nope' }, ['username', 'password', 'email']],
    ])('answers 400 with fields for %s', async (_what, change, expectedFields) => {
      const username = unique('val');
      const body: Json = { username, password: PASSWORD, email: `${username}@example.com`, ...change };
      for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
      const before = await fx.server.latchkey.storage.users.count();
      const answer = await api('POST', '/api/users/', { json: body });
      expect(answer.status, answer.text).toBe(400);
      expect(answer.headers.get('content-type')).toMatch(/application\/json/);
      expect(answer.json['error']).toBe('invalid_request');
      expect(answer.json['error_description']).toEqual(expect.any(String));
      const fields = fieldsOf(answer);
      expect(Object.keys(fields).sort()).toEqual([...expectedFields].sort());
      for (const messages of Object.values(fields)) {
        expect(messages.length).toBeGreaterThan(0);
        for (const message of messages) expect(message).toEqual(expect.any(String));
      }
      expect(await fx.server.latchkey.storage.users.count()).toBe(before);
    });

    it('says which field is required', async () => {
      const answer = await api('POST', '/api/users/', { json: { email: 'nobody@example.com' } });
      expect(answer.status).toBe(400);
      expect(fieldsOf(answer)).toEqual({ username: [expect.stringMatching(/required/i)], password: [expect.stringMatching(/required/i)] });
      const noEmail = await api('POST', '/api/users/', { json: { username: unique('noemail'), password: PASSWORD } });
      expect(noEmail.status).toBe(400);
      expect(fieldsOf(noEmail)).toEqual({ email: [expect.stringMatching(/required/i)] });
    });

    it('validates PATCH and PUT fields the same way and leaves the row alone', async () => {
      const target = await fixtureUser();
      const { access } = await apiLogin(target.username);
      const before = await row(target.id);
      for (const [method, json, field] of [
        ['PATCH', { email: 'broken' }, 'email'],
        ['PATCH', { username: 'white space' }, 'username'],
        ['PATCH', { first_name: 7 }, 'first_name'],
        ['PATCH', { password: 'short', current_password: PASSWORD }, 'password'],
        ['PATCH', { nickname: 'x' }, 'nickname'],
        ['PUT', { first_name: 'NoUsername' }, 'username'],
        ['PUT', { username: '' }, 'username'],
      ] as Array<[string, Json, string]>) {
        const answer = await api(method, `/api/users/${target.id}/`, { token: access, json });
        expect(answer.status, `${method} ${JSON.stringify(json)}: ${answer.text}`).toBe(400);
        expect(Object.keys(fieldsOf(answer))).toContain(field);
      }
      expect(await row(target.id)).toEqual(before);
    });

    it('accepts a minimal registration (no names); users without email (legacy endpoint) do not collide', async () => {
      const username = unique('min');
      const answer = await api('POST', '/api/users/', { json: { username, password: PASSWORD, email: `${username}@example.com` } });
      expect(answer.status, answer.text).toBe(201);
      expect(asUser(answer)).toMatchObject({ username, first_name: '', last_name: '', is_active: true, is_staff: false, is_superuser: false, email_verified: false, last_login: null });
      // /users/register/ keeps email optional, as the old provider did.
      for (let i = 0; i < 2; i++) {
        const legacy = unique('min');
        const created = await fetch(`${fx.server.url}/users/register/`, {
          method: 'POST',
          body: new URLSearchParams({ username: legacy, password: PASSWORD, confirm_password: PASSWORD }),
        });
        expect(created.status).toBe(201);
        expect(((await created.json()) as Json)['email']).toBe('');
      }
    });

    it('stores what was registered and the new user can sign in', async () => {
      const username = unique('Reg');
      const answer = await api('POST', '/api/users', {
        json: { username, password: PASSWORD, email: `  ${username}@Example.COM `, first_name: 'Grace', last_name: 'Hopper' },
      });
      expect(answer.status, answer.text).toBe(201);
      const user = asUser(answer);
      expect(user).toMatchObject({ username, email: `${username.toLowerCase()}@example.com`, first_name: 'Grace', last_name: 'Hopper' });
      expect(Object.keys(user).sort()).toEqual(
        ['date_joined', 'email', 'email_verified', 'first_name', 'id', 'is_active', 'is_staff', 'is_superuser', 'last_login', 'last_name', 'pending_email', 'updated_at', 'username'],
      );
      const { access } = await apiLogin(username.toUpperCase());
      expect(asUser(await api('GET', '/auth/me', { token: access })).id).toBe(user.id);
    });

    it('answers a malformed JSON body with a JSON 400', async () => {
      const target = await fixtureUser();
      const before = await row(target.id);
      for (const [method, path, token] of [
        ['POST', '/api/users/', undefined],
        ['PATCH', `/api/users/${target.id}/`, ctx.staffToken],
        ['PUT', `/api/users/${target.id}/`, ctx.staffToken],
        ['POST', '/api/token/', undefined],
      ] as Array<[string, string, string | undefined]>) {
        for (const raw of ['{"username": "x",', '[1, 2, 3]', '"just a string"', 'null']) {
          const answer = await api(method, path, { token, raw });
          expect(answer.status, `${method} ${path} ${raw}: ${answer.text}`).toBe(400);
          expect(answer.headers.get('content-type')).toMatch(/application\/json/);
          expect(answer.json['error']).toEqual(expect.any(String));
        }
      }
      expect(await row(target.id)).toEqual(before);
    });
  });

  describe('uniqueness', () => {
    it('answers 409 to a username taken in another case', async () => {
      const taken = await fixtureUser({ username: unique('Taken') });
      for (const username of [taken.username.toUpperCase(), taken.username.toLowerCase()]) {
        const answer = await api('POST', '/api/users/', { json: { username, password: PASSWORD, email: `${username}@example.com` } });
        expect(answer.status, answer.text).toBe(409);
        expect(answer.json['error']).toBe('conflict');
        expect(answer.json['error_description']).toMatch(/username/);
      }
    });

    it('answers 409 to an email taken in another case', async () => {
      const taken = await fixtureUser();
      const answer = await api('POST', '/api/users/', {
        json: { username: unique('dup'), password: PASSWORD, email: taken.email!.toUpperCase() },
      });
      expect(answer.status, answer.text).toBe(409);
      expect(answer.json['error_description']).toMatch(/email/);
    });

    it('answers 409 when PATCH or PUT take an existing username or email, and allows renaming oneself in another case', async () => {
      const a = await fixtureUser();
      const b = await fixtureUser();
      const { access } = await apiLogin(a.username);
      const before = await row(a.id);
      for (const [method, json] of [
        ['PATCH', { username: b.username.toUpperCase() }],
        ['PATCH', { email: b.email!.toUpperCase(), current_password: PASSWORD }],
        ['PUT', { username: a.username, email: ` ${b.email!.toUpperCase()} `, current_password: PASSWORD }],
      ] as Array<[string, Json]>) {
        const answer = await api(method, `/api/users/${a.id}/`, { token: access, json });
        expect(answer.status, `${method} ${JSON.stringify(json)}: ${answer.text}`).toBe(409);
      }
      expect(await row(a.id)).toEqual(before);
      const renamed = await api('PATCH', `/api/users/${a.id}/`, { token: access, json: { username: a.username.toUpperCase(), email: a.email!.toUpperCase() } });
      expect(renamed.status, renamed.text).toBe(200);
      expect(asUser(renamed)).toMatchObject({ username: a.username.toUpperCase(), email: a.email, email_verified: true });
    });
  });

  // --------------------------------------------------------------------- trailing slash

  describe('trailing slash', () => {
    it.each(['', '/'])('serves every route with suffix "%s"', async (slash) => {
      const username = unique('slash');
      const created = await api('POST', `/api/users${slash}`, { json: { username, password: PASSWORD, email: `${username}@example.com` } });
      expect(created.status, created.text).toBe(201);
      const id = asUser(created).id;
      const token = await api('POST', `/api/token${slash}`, { json: { username, password: PASSWORD } });
      expect(token.status, token.text).toBe(200);
      const access = token.json['access'] as string;
      const refreshed = await api('POST', `/api/token/refresh${slash}`, { json: { refresh: token.json['refresh'] } });
      expect(refreshed.status, refreshed.text).toBe(200);
      expect((await api('GET', `/auth/me${slash}`, { token: access })).status).toBe(200);
      expect((await api('GET', `/api/users${slash}`, { token: ctx.staffToken })).status).toBe(200);
      expect((await api('GET', `/api/users/${id}${slash}`, { token: access })).status).toBe(200);
      expect((await api('PATCH', `/api/users/${id}${slash}`, { token: access, json: { first_name: 'Slash' } })).status).toBe(200);
      // PUT without email drops one's own address, and deleting oneself: both need the password.
      expect((await api('PUT', `/api/users/${id}${slash}`, { token: access, json: { username, current_password: PASSWORD } })).status).toBe(200);
      expect((await api('DELETE', `/api/users/${id}${slash}`, { token: access, json: { current_password: PASSWORD } })).status).toBe(204);
      expect(await row(id)).toBeUndefined();
    });
  });

  // ------------------------------------------------------------------ PUT/PATCH semantics

  describe('PUT and PATCH', () => {
    it('PUT replaces: absent names and email are reset, email_verified too', async () => {
      const target = await fixtureUser({ firstName: 'Grace', lastName: 'Hopper', emailVerified: true });
      const { access } = await apiLogin(target.username);
      const answer = await api('PUT', `/api/users/${target.id}/`, { token: access, json: { username: target.username, current_password: PASSWORD } });
      expect(answer.status, answer.text).toBe(200);
      expect(asUser(answer)).toMatchObject({ username: target.username, first_name: '', last_name: '', email: '', email_verified: false });
      expect(await row(target.id)).toMatchObject({ firstName: '', lastName: '', email: null, emailVerified: false, passwordHash: ctx.passwordHash });
      // The password is untouched by a PUT without one.
      expect((await tokenAnswer(target.username, PASSWORD)).status).toBe(200);
    });

    it('PUT sets the given fields', async () => {
      const target = await fixtureUser();
      const newName = unique('renamed');
      const answer = await api('PUT', `/api/users/${target.id}/`, {
        token: ctx.staffToken,
        json: { username: newName, email: `${newName}@example.net`, first_name: 'Katherine' },
      });
      expect(answer.status, answer.text).toBe(200);
      expect(asUser(answer)).toMatchObject({ id: target.id, username: newName, email: `${newName}@example.net`, first_name: 'Katherine', last_name: '' });
    });

    it('PATCH changes only what is sent', async () => {
      const target = await fixtureUser({ firstName: 'Grace', lastName: 'Hopper' });
      const { access } = await apiLogin(target.username);
      const answer = await api('PATCH', `/api/users/${target.id}/`, { token: access, json: { last_name: 'Brewster' } });
      expect(answer.status, answer.text).toBe(200);
      expect(asUser(answer)).toMatchObject({ username: target.username, email: target.email, first_name: 'Grace', last_name: 'Brewster', email_verified: true });
      const empty = await api('PATCH', `/api/users/${target.id}/`, { token: access, json: {} });
      expect(empty.status, empty.text).toBe(200);
      expect(asUser(empty)).toMatchObject({ first_name: 'Grace', last_name: 'Brewster' });
    });

    it('staff changing an email set it unverified; the same email in another case changes nothing', async () => {
      const target = await fixtureUser({ emailVerified: true });
      const same = await api('PATCH', `/api/users/${target.id}/`, { token: ctx.staffToken, json: { email: target.email!.toUpperCase() } });
      expect(same.status, same.text).toBe(200);
      expect(asUser(same)).toMatchObject({ email: target.email, email_verified: true, pending_email: null });
      const changed = await api('PATCH', `/api/users/${target.id}/`, { token: ctx.staffToken, json: { email: `new.${target.email}` } });
      expect(changed.status, changed.text).toBe(200);
      expect(asUser(changed)).toMatchObject({ email: `new.${target.email}`, email_verified: false, pending_email: null });
      expect((await row(target.id))?.emailVerified).toBe(false);
    });

    it("one's own new email waits for verification; the old one stays in use", async () => {
      const target = await fixtureUser({ emailVerified: true });
      const { access } = await apiLogin(target.username);
      const changed = await api('PATCH', `/api/users/${target.id}/`, { token: access, json: { email: `new.${target.email}`, current_password: PASSWORD } });
      expect(changed.status, changed.text).toBe(200);
      expect(asUser(changed)).toMatchObject({ email: target.email, email_verified: true, pending_email: `new.${target.email}` });
      // Sign-in by email still knows only the old address.
      expect((await tokenAnswer(target.email!, PASSWORD)).status).toBe(200);
      expect((await tokenAnswer(`new.${target.email}`, PASSWORD)).status).toBe(401);
    });
  });
});
