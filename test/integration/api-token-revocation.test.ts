/**
 * The REST API's JWTs (/api/token/) die with the password: an access or refresh JWT issued
 * before the user's password changed (by any path), before the account was deactivated
 * (also once it is active again) or deleted is refused everywhere a JWT is taken:
 * /api/token/verify/, /api/token/refresh/ and as a bearer token (/auth/me/). Tokens issued
 * afterwards work. Over a real server on each backend.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { User } from '../../src/storage/users.js';
import { signWithServerKey, simplejwtAccessClaims, storeHashOfCost } from '../helpers/api-jwt.js';
import { type Answer } from '../helpers/http.js';
import { makeUser, PASSWORD } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';

const NEW_PASSWORD = 'another long enough passphrase';

interface Pair {
  access: string;
  refresh: string;
}

describeOnBackends('API JWTs die with the password, deactivation and deletion (%s)', (fx) => {
  let staffToken: string;

  const call = fx.api;
  const obtain = (username: string, password = PASSWORD): Promise<Pair> => fx.apiLogin(username, password);

  beforeAll(async () => {
    const staff = await makeUser(fx.server.latchkey, { isStaff: true });
    staffToken = (await obtain(staff.username)).access;
  });

  /** 401 invalid_token, with simplejwt's `detail` (its own sentence) and `code` next to ours. */
  function expectInvalidToken(answer: Answer, label: string): void {
    expect(answer.status, `${label}: ${answer.text}`).toBe(401);
    expect(answer.json['error'], label).toBe('invalid_token');
    expect(answer.json['error_description'], label).toEqual(expect.any(String));
    expect(answer.json['detail'], label).toBe('Token is invalid or expired');
    expect(answer.json['code'], label).toBe('token_not_valid');
  }

  /** Both tokens of `pair`, wherever each kind (or the other kind) could be presented. */
  async function expectDead(pair: Pair, why: string): Promise<void> {
    for (const [kind, token] of Object.entries(pair)) {
      expectInvalidToken(await call('POST', '/api/token/verify/', { json: { token } }), `${kind} at verify ${why}`);
      expectInvalidToken(await call('POST', '/api/token/refresh/', { json: { refresh: token } }), `${kind} at refresh ${why}`);
      const me = await call('GET', '/auth/me/', { token });
      expectInvalidToken(me, `${kind} at /auth/me/ ${why}`);
      expect(me.headers.get('www-authenticate') ?? '', `${kind} at /auth/me/ ${why}`).toMatch(/^Bearer error="invalid_token"/);
    }
  }

  async function expectAlive(pair: Pair, user: User, why: string): Promise<void> {
    const verified = await call('POST', '/api/token/verify/', { json: { token: pair.access } });
    expect(verified.status, `verify ${why}: ${verified.text}`).toBe(200);
    expect(verified.json).toEqual({});
    const me = await call('GET', '/auth/me/', { token: pair.access });
    expect(me.status, `/auth/me/ ${why}: ${me.text}`).toBe(200);
    expect(me.json['id']).toBe(user.id);
    const refreshed = await call('POST', '/api/token/refresh/', { json: { refresh: pair.refresh } });
    expect(refreshed.status, `refresh ${why}: ${refreshed.text}`).toBe(200);
    // And what the refresh gave works too.
    expect((await call('GET', '/auth/me/', { token: refreshed.json['access'] as string })).status, why).toBe(200);
  }

  it('a password change through PATCH /api/users/<id>/ (current_password) ends the tokens issued before it', async () => {
    const user = await makeUser(fx.server.latchkey);
    const before = await obtain(user.username);
    const spare = await obtain(user.username);
    const changed = await call('PATCH', `/api/users/${user.id}/`, { token: before.access, json: { current_password: PASSWORD, password: NEW_PASSWORD } });
    expect(changed.status, changed.text).toBe(200);

    await expectDead(before, 'after PATCH /api/users/<id>/');
    await expectDead(spare, 'of another login, after PATCH /api/users/<id>/');
    await expectAlive(await obtain(user.username, NEW_PASSWORD), user, 'issued after the change');
  });

  it('a password change through POST /api/me/password/ ends the tokens issued before it, the caller\'s own too', async () => {
    const user = await makeUser(fx.server.latchkey);
    const before = await obtain(user.username);
    const other = await obtain(user.username);
    const changed = await call('POST', '/api/me/password/', { token: before.access, json: { current_password: PASSWORD, new_password: NEW_PASSWORD } });
    expect(changed.status, changed.text).toBe(200);

    await expectDead(before, 'after POST /api/me/password/');
    await expectDead(other, 'of another login, after POST /api/me/password/');
    await expectAlive(await obtain(user.username, NEW_PASSWORD), user, 'issued after the change');
  });

  it('a password reset (the mailed link\'s path, no current password) ends the tokens issued before it', async () => {
    const user = await makeUser(fx.server.latchkey);
    const before = await obtain(user.username);
    await fx.server.latchkey.services.userService.resetPassword({ user: null, ip: '127.0.0.1' }, user, NEW_PASSWORD);

    await expectDead(before, 'after a password reset');
    await expectAlive(await obtain(user.username, NEW_PASSWORD), user, 'issued after the reset');
  });

  it('a staff-set password (PATCH /api/users/<id>/ by staff) ends the user\'s tokens; the staff token is unaffected', async () => {
    const user = await makeUser(fx.server.latchkey);
    const before = await obtain(user.username);
    const changed = await call('PATCH', `/api/users/${user.id}/`, { token: staffToken, json: { password: NEW_PASSWORD } });
    expect(changed.status, changed.text).toBe(200);

    await expectDead(before, 'after staff set the password');
    expect((await call('GET', '/auth/me/', { token: staffToken })).status).toBe(200);
  });

  it('deactivation by staff ends the tokens, and reactivation does not revive them', async () => {
    const user = await makeUser(fx.server.latchkey);
    const before = await obtain(user.username);
    const deactivated = await call('PATCH', `/api/users/${user.id}/`, { token: staffToken, json: { is_active: false } });
    expect(deactivated.status, deactivated.text).toBe(200);
    await expectDead(before, 'after deactivation');

    const reactivated = await call('PATCH', `/api/users/${user.id}/`, { token: staffToken, json: { is_active: true } });
    expect(reactivated.status, reactivated.text).toBe(200);
    await expectDead(before, 'after deactivation and reactivation');
    await expectAlive(await obtain(user.username), user, 'issued after the reactivation');
  });

  it('deactivation straight in the repository (users.setActive) is enough too', async () => {
    const user = await makeUser(fx.server.latchkey);
    const before = await obtain(user.username);
    await fx.server.latchkey.storage.users.setActive(user.id, false);
    await fx.server.latchkey.storage.users.setActive(user.id, true);
    await expectDead(before, 'after setActive(false) and setActive(true)');
    await expectAlive(await obtain(user.username), user, 'issued after');
  });

  it('deletion ends the tokens', async () => {
    const user = await makeUser(fx.server.latchkey);
    const before = await obtain(user.username);
    const removed = await call('DELETE', `/api/users/${user.id}/`, { token: staffToken });
    expect(removed.status, removed.text).toBe(204);
    await expectDead(before, 'after deletion');
  });

  it('a profile change (no password, still active) leaves the tokens alone', async () => {
    const user = await makeUser(fx.server.latchkey);
    const before = await obtain(user.username);
    const changed = await call('PATCH', `/api/users/${user.id}/`, { token: before.access, json: { first_name: 'Grace' } });
    expect(changed.status, changed.text).toBe(200);
    await expectAlive(before, user, 'after a profile change');
  });

  it('a login that upgrades the password hash (BCRYPT_COST changed) hands out tokens that work', async () => {
    const user = await makeUser(fx.server.latchkey);
    await storeHashOfCost(fx.server.latchkey, user.id, PASSWORD, 11);
    // This login rehashes at cost 10, which replaces the stamp; the pair must carry the new one.
    const pair = await obtain(user.username);
    expect((await fx.server.latchkey.storage.users.findById(user.id))?.passwordHash).toMatch(/^bcrypt_sha256\$\$2b\$10\$/);
    await expectAlive(pair, user, 'issued by the login that rehashed');
  });

  describe('tokens issued before the upgrade (no auth_stamp claim)', () => {
    /** An access JWT as the previous release minted it, signed with the server's current key. */
    const legacyAccessToken = (user: User) => signWithServerKey(fx.server.latchkey, simplejwtAccessClaims(fx.server.latchkey, user));

    it('work while the password is unchanged, and die with the first change', async () => {
      const user = await makeUser(fx.server.latchkey);
      const legacy = await legacyAccessToken(user);
      expect((await call('POST', '/api/token/verify/', { json: { token: legacy } })).status).toBe(200);
      expect((await call('GET', '/auth/me/', { token: legacy })).status).toBe(200);

      await fx.server.latchkey.storage.users.setPasswordHash(user.id, await fx.server.latchkey.services.hasher.hash(NEW_PASSWORD));
      expectInvalidToken(await call('POST', '/api/token/verify/', { json: { token: legacy } }), 'legacy token at verify');
      expectInvalidToken(await call('GET', '/auth/me/', { token: legacy }), 'legacy token at /auth/me/');
    });
  });
});
