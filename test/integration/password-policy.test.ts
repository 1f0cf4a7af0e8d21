/**
 * The password policy as API clients meet it (POST /api/users/, then signing in at
 * /api/token/): NIST length rules, the common-password list, no composition rules, no
 * 72-byte bcrypt truncation; and the hasher behind it: stored hashes upgraded to the
 * configured cost on sign-in, and hashing kept off the event loop.
 */
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { storeHashOfCost } from '../helpers/api-jwt.js';
import { readAnswer, type Answer } from '../helpers/http.js';
import { makeUser, PASSWORD } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';

const fieldsOf = (answer: Answer) => (answer.json['fields'] ?? {}) as Record<string, string[]>;

describeOnBackends('password policy over HTTP (%s)', { BCRYPT_COST: '10' }, (fx) => {
  const unique = () => `pw${randomBytes(4).toString('hex')}`;

  async function register(password: string): Promise<{ answer: Answer; username: string }> {
    const username = unique();
    const answer = await readAnswer(
      await fetch(`${fx.server.url}/api/users/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ username, email: `${username}@example.com`, password }),
      }),
    );
    // An accepted password never comes back.
    if (answer.status === 201) expect(answer.text).not.toContain(JSON.stringify(password).slice(1, -1));
    return { answer, username };
  }

  async function accepted(password: string): Promise<string> {
    const { answer, username } = await register(password);
    expect(answer.status, `${JSON.stringify(password)}: ${answer.text}`).toBe(201);
    expect(answer.json['username']).toBe(username);
    return username;
  }

  async function refused(password: string): Promise<string[]> {
    const { answer, username } = await register(password);
    expect(answer.status, `${JSON.stringify(password)}: ${answer.text}`).toBe(400);
    expect(Object.keys(fieldsOf(answer))).toEqual(['password']);
    // Nothing was created.
    expect(await fx.server.latchkey.storage.users.findByLogin(username)).toBeUndefined();
    return fieldsOf(answer)['password'] ?? [];
  }

  async function signIn(username: string, password: string): Promise<Answer> {
    return readAnswer(
      await fetch(`${fx.server.url}/api/token/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ username, password }),
      }),
    );
  }

  it('refuses 7 characters and accepts 8 (characters, not bytes)', async () => {
    expect((await refused('zq8#kd2')).join(' ')).toMatch(/at least 8 characters/);
    await accepted('zq8#kd2m');
    // Seven characters of four bytes each are still seven characters.
    expect((await refused('🔑'.repeat(7))).join(' ')).toMatch(/at least 8/);
    const keys = await accepted('🔑'.repeat(8));
    expect((await signIn(keys, '🔑'.repeat(8))).status).toBe(200);
  });

  it('accepts long passphrases (64 and 200 characters) that then sign in', async () => {
    for (const length of [64, 200]) {
      const passphrase = Array.from({ length: Math.ceil(length / 9) }, (_, i) => `word${i}xyz`).join(' ').slice(0, length);
      expect(passphrase).toHaveLength(length);
      const username = await accepted(passphrase);
      const ok = await signIn(username, passphrase);
      expect(ok.status, ok.text).toBe(200);
      expect(ok.json['access']).toEqual(expect.any(String));
      expect((await signIn(username, passphrase.slice(0, -1))).status).toBe(401);
    }
  });

  it('refuses passwords on the common list, ignoring case and surrounding spaces', async () => {
    for (const common of ['qwertyuiop', 'iloveyou1', '12345678', 'password', 'PASSWORD ', '  Password1', 'TrustNo1', 'Sunshine']) {
      const messages = await refused(common);
      expect(messages.join(' '), common).toMatch(/common/i);
    }
  });

  it('has no composition rules: a long all-lowercase password is fine', async () => {
    const username = await accepted('alllowercaseletters');
    expect((await signIn(username, 'alllowercaseletters')).status).toBe(200);
    await accepted('correcthorsebatterystaple');
  });

  it('refuses more than 1024 characters', async () => {
    expect((await refused('x'.repeat(1025))).join(' ')).toMatch(/at most 1024/);
  });

  it('does not truncate at 72 bytes: a password differing after byte 72 fails', async () => {
    const cases: Array<[string, string]> = [
      ['a'.repeat(72) + 'X', 'a'.repeat(72) + 'Y'],
      // 'é' is two bytes in UTF-8: 36 of them fill bcrypt's 72.
      ['é'.repeat(36) + '1', 'é'.repeat(36) + '2'],
    ];
    for (const [password, sameFirst72Bytes] of cases) {
      const username = await accepted(password);
      const wrong = await signIn(username, sameFirst72Bytes);
      expect(wrong.status, `${sameFirst72Bytes} must not open ${password}`).toBe(401);
      expect(wrong.text).not.toContain('access');
      const right = await signIn(username, password);
      expect(right.status, right.text).toBe(200);
    }
  });

  it('upgrades a hash of another cost to the configured cost on sign-in', async () => {
    const user = await makeUser(fx.server.latchkey);
    await storeHashOfCost(fx.server.latchkey, user.id, PASSWORD, 11);
    expect((await fx.server.latchkey.storage.users.findById(user.id))?.passwordHash.startsWith('bcrypt_sha256$$2b$11$')).toBe(true);

    // A wrong password upgrades nothing.
    expect((await signIn(user.username, 'not the passphrase at all')).status).toBe(401);
    expect((await fx.server.latchkey.storage.users.findById(user.id))?.passwordHash.startsWith('bcrypt_sha256$$2b$11$')).toBe(true);

    const ok = await signIn(user.username, PASSWORD);
    expect(ok.status, ok.text).toBe(200);
    const upgraded = (await fx.server.latchkey.storage.users.findById(user.id))!.passwordHash;
    expect(upgraded.startsWith('bcrypt_sha256$$2b$10$')).toBe(true);
    // The new hash is of the same password.
    expect((await signIn(user.username, PASSWORD)).status).toBe(200);
    expect((await fx.server.latchkey.storage.users.findById(user.id))!.passwordHash).toBe(upgraded);
  });

  it('hashes off the event loop: discovery answers while 16 sign-ins are being checked', async () => {
    const user = await makeUser(fx.server.latchkey);
    // Warm up the pool and the connection.
    expect((await signIn(user.username, PASSWORD)).status).toBe(200);

    const order: string[] = [];
    const logins = Array.from({ length: 16 }, (_, i) =>
      signIn(user.username, PASSWORD).then((answer) => {
        order.push(`login ${i}`);
        return answer;
      }),
    );
    const discovery = (async () => {
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`${fx.server.issuer}/.well-known/openid-configuration`);
        expect(res.status).toBe(200);
        expect(((await res.json()) as { issuer: string }).issuer).toBe(fx.server.issuer);
        order.push(`discovery ${i}`);
      }
    })();
    const answers = await Promise.all(logins);
    await discovery;
    for (const answer of answers) expect(answer.status, answer.text).toBe(200);

    const lastLogin = Math.max(...order.flatMap((e, i) => (e.startsWith('login') ? [i] : [])));
    const lastDiscovery = order.lastIndexOf('discovery 4');
    expect(lastDiscovery, `completion order: ${order.join(', ')}`).toBeLessThan(lastLogin);
  });
});
