/**
 * API_ROTATE_REFRESH_TOKENS=false: /api/token/refresh/ as djangorestframework-simplejwt
 * answers by default (ROTATE_REFRESH_TOKENS=False), for old clients that keep reusing one
 * refresh token. The token is still confined: issuer, audience, type, signature, the user
 * still active with the same password, and a revoked login stays revoked.
 */
import { decodeJwt } from 'jose';
import { expect, it } from 'vitest';
import { describeOnBackends } from '../helpers/fixture.js';
import { makeUser } from '../helpers/rp.js';
import { JWT } from '../helpers/shapes.js';

describeOnBackends('API refresh without rotation (%s)', { API_ROTATE_REFRESH_TOKENS: 'false' }, (fx) => {
  const refreshAt = (refresh: string) => fx.api('POST', '/api/token/refresh/', { json: { refresh } });

  it('answers a new access token only, and the refresh token keeps working', async () => {
    const user = await makeUser(fx.server.latchkey);
    const pair = await fx.apiLogin(user.username);
    const first = await refreshAt(pair.refresh);
    expect(first.status, first.text).toBe(200);
    expect(Object.keys(first.json)).toEqual(['access']);
    const access = String(first.json['access']);
    expect(access).toMatch(JWT);
    expect(decodeJwt(access)).toMatchObject({ token_type: 'access', sub: String(user.id) });
    // The same refresh token again: no reuse detection here, as simplejwt's default.
    const second = await refreshAt(pair.refresh);
    expect(second.status, second.text).toBe(200);
    expect(second.json['access']).not.toBe(access);
    // The new access token works at the API.
    const me = await fx.api('GET', '/auth/me/', { token: String(second.json['access']) });
    expect(me.status, me.text).toBe(200);
    expect(me.json['username']).toBe(user.username);
  });

  it('still refuses it once the password changed or the account was deactivated', async () => {
    const user = await makeUser(fx.server.latchkey);
    const pair = await fx.apiLogin(user.username);
    await fx.server.latchkey.services.userService.resetPassword({ user: null, ip: '127.0.0.1' }, user, 'a brand new passphrase 77');
    const afterPassword = await refreshAt(pair.refresh);
    expect(afterPassword.status, afterPassword.text).toBe(401);
    expect(afterPassword.json).toMatchObject({ error: 'invalid_token', code: 'token_not_valid' });

    const other = await makeUser(fx.server.latchkey);
    const otherPair = await fx.apiLogin(other.username);
    expect((await refreshAt(otherPair.refresh)).status).toBe(200);
    await fx.server.latchkey.storage.users.setActive(other.id, false);
    expect((await refreshAt(otherPair.refresh)).status).toBe(401);
    // Reactivation does not revive it: the refused attempt ended its login.
    await fx.server.latchkey.storage.users.setActive(other.id, true);
    expect((await refreshAt(otherPair.refresh)).status).toBe(401);
  });

  it('refuses access tokens and garbage as refresh tokens', async () => {
    const user = await makeUser(fx.server.latchkey);
    const pair = await fx.apiLogin(user.username);
    expect((await refreshAt(pair.access)).status).toBe(401);
    expect((await refreshAt('not.a.jwt')).status).toBe(401);
    expect((await refreshAt(pair.refresh)).status).toBe(200);
  });
});
