/**
 * Proof of presence for account changes, and email changes that cannot hijack recovery.
 * Changing the email, the password or the two-factor settings and deleting the account need
 * the current password (and the second factor where enrolled), checked by the one
 * authenticator: throttled and audited like a login. A person's new address waits for
 * verification while sign-in, reset and notices keep the old one, which is told; reset mail
 * goes only to verified addresses; address changes are rate-limited. Mail goes to a real
 * SMTP server in the test process.
 */
import { describe, expect, it } from 'vitest';
import type { User } from '../../src/storage/users.js';
import { formOf, UserAgent } from '../helpers/browserless.js';
import { type Answer } from '../helpers/http.js';
import { makeUser, PASSWORD } from '../helpers/rp.js';
import { linkIn } from '../helpers/smtp.js';
import { codeAt, enrollOverRest, wrongCode } from '../helpers/two-factor.js';
import { describeOnBackends } from '../helpers/fixture.js';

const NEW_PASSWORD = 'another long passphrase';
const WRONG = 'not the password at all';

// Three wrong passwords lock an account, as three wrong logins would.
describeOnBackends('account changes need proof of presence; new addresses wait for verification (%s)', { TRUST_PROXY: '1', LOGIN_MAX_FAILURES_PER_ACCOUNT: '3' }, (fx) => {
  let ipCounter = 0;
  /** Each call comes from its own address (TRUST_PROXY), so only the per-account limits meet. */
  const freshIp = () => `203.0.113.${++ipCounter}`;

  const api = fx.bearer;

  async function jwtOf(user: User, password = PASSWORD, otp?: string): Promise<string> {
    const answer = await api('POST', '/api/token/', undefined, { username: user.username, password, ...(otp ? { otp } : {}) });
    expect(answer.status, answer.text).toBe(200);
    return String(answer.json['access']);
  }

  const fieldsOf = (answer: Answer) => (answer.json['fields'] ?? {}) as Record<string, string[]>;
  const verifyLinkIn = (text: string) => linkIn(text, `${fx.server.url}/account/verify-email?token=`);

  /** Presses the Verify button of a verification link, as a person would. */
  async function pressVerify(link: string): Promise<{ status: number; html: string }> {
    const agent = new UserAgent();
    const page = await agent.fetch(link);
    const form = formOf(await page.text(), '/account/verify-email');
    const token = new URL(link).searchParams.get('token')!;
    const posted = await agent.postForm(new URL(form.action, link), { csrf: form.csrf, token });
    return { status: posted.status, html: await posted.text() };
  }

  /** Asks for a reset link for `email` on the "Forgot your password?" page. */
  async function forgot(email: string): Promise<void> {
    const agent = new UserAgent();
    const page = await agent.fetch(`${fx.server.url}/account/password/forgot`);
    const form = formOf(await page.text(), '/account/password/forgot');
    const posted = await agent.fetch(new URL(form.action, fx.server.url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': freshIp() },
      body: new URLSearchParams({ csrf: form.csrf, email }).toString(),
    });
    expect(posted.status).toBe(200);
    await fx.server.latchkey.services.background.settled();
  }

  const resetLinks = async (userId: number) =>
    Number((await fx.server.latchkey.storage.knex('email_tokens').where({ user_id: userId, purpose: 'reset_password' }).count({ n: '*' }).first())?.n);

  describe('every account change needs the current password: without it, wrong, right', () => {
    /** Each change as an app with the person's first-party token sends it; `proof` is added to the body. */
    const CHANGES: Array<{ name: string; method: string; path: (u: User) => string; body: (proof: Record<string, string>) => Record<string, string>; field: string; status: number }> = [
      { name: 'email change', method: 'PATCH', path: (u) => `/api/users/${u.id}/`, body: (p) => ({ email: `moved.${Math.random().toString(36).slice(2, 8)}@example.org`, ...p }), field: 'current_password', status: 200 },
      { name: 'password change (PATCH)', method: 'PATCH', path: (u) => `/api/users/${u.id}/`, body: (p) => ({ password: NEW_PASSWORD, ...p }), field: 'current_password', status: 200 },
      { name: 'password change (/api/me/password/)', method: 'POST', path: () => '/api/me/password/', body: (p) => ({ new_password: NEW_PASSWORD, ...p }), field: 'current_password', status: 200 },
      { name: 'deleting the account', method: 'DELETE', path: (u) => `/api/users/${u.id}/`, body: (p) => p, field: 'current_password', status: 204 },
      { name: 'setting up two-factor', method: 'POST', path: () => '/api/me/two-factor/enroll/', body: (p) => ({ ...(p['current_password'] ? { password: p['current_password'] } : {}) }), field: 'password', status: 200 },
    ];

    it.each(CHANGES)('$name', async ({ method, path, body, field, status }) => {
      const user = await makeUser(fx.server.latchkey);
      const token = await jwtOf(user);
      const before = await fx.server.latchkey.storage.users.findById(user.id);

      const without = await api(method, path(user), token, body({}));
      expect(without.status, without.text).toBe(400);
      expect(fieldsOf(without)[field]).toEqual(['This field is required.']);

      const wrong = await api(method, path(user), token, body({ current_password: WRONG }));
      expect(wrong.status, wrong.text).toBe(400);
      expect(fieldsOf(wrong)[field]?.[0]).toMatch(/password is not correct/);
      expect(await fx.server.latchkey.storage.users.findById(user.id)).toEqual(before);
      expect(await fx.server.latchkey.services.twoFactor.status(user)).toMatchObject({ pending: false });

      // The wrong guess was a login failure; the right one confirms the person, records no login.
      const failures = await fx.server.latchkey.services.audit.list({ offset: 0, limit: 20, event: 'login.failure' });
      expect(failures.events.some((e) => e.actor_user_id === user.id)).toBe(true);
      const right = await api(method, path(user), token, body({ current_password: PASSWORD }));
      expect(right.status, right.text).toBe(status);
      const confirmed = await fx.server.latchkey.services.audit.list({ offset: 0, limit: 20, event: 'identity.confirmed' });
      expect(confirmed.events.some((e) => e.actor_user_id === user.id)).toBe(true);
      if (status !== 204) expect((await fx.server.latchkey.storage.users.findById(user.id))?.lastLogin).toBe(before?.lastLogin);
    });

    it('counts wrong current passwords like failed logins: locked after the limit, even for the right one (429, Retry-After)', async () => {
      const user = await makeUser(fx.server.latchkey);
      const token = await jwtOf(user);
      for (let i = 0; i < 3; i++) {
        const wrong = await api('PATCH', `/api/users/${user.id}/`, token, { email: `guess${i}@example.org`, current_password: `${WRONG} ${i}` });
        expect(wrong.status, wrong.text).toBe(400);
      }
      for (const password of [`${WRONG} 4`, PASSWORD]) {
        const locked = await api('PATCH', `/api/users/${user.id}/`, token, { email: 'late@example.org', current_password: password });
        expect(locked.status, locked.text).toBe(429);
        expect(locked.json['error']).toBe('too_many_requests');
        expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
      }
      // The same lock holds at the login doors.
      expect((await api('POST', '/api/token/', undefined, { username: user.username, password: PASSWORD })).status).toBe(429);
      expect((await fx.server.latchkey.storage.users.findById(user.id))?.pendingEmail).toBeNull();
    });

    it('staff changing someone else need no password; the audit log names them', async () => {
      const staff = await makeUser(fx.server.latchkey, { isStaff: true });
      const user = await makeUser(fx.server.latchkey);
      const changed = await api('PATCH', `/api/users/${user.id}/`, await jwtOf(staff), { email: `set.by.staff.${user.id}@example.org` });
      expect(changed.status, changed.text).toBe(200);
      expect(changed.json).toMatchObject({ email: `set.by.staff.${user.id}@example.org`, email_verified: false, pending_email: null });
      const audit = await fx.server.latchkey.services.audit.list({ offset: 0, limit: 20, event: 'user.updated' });
      expect(audit.events.find((e) => e.target_id === String(user.id))).toMatchObject({ actor: staff.username, actor_user_id: staff.id });
    });
  });

  describe('with two-factor on, the code too', () => {
    it('refuses an email change, a deletion and new recovery codes without the code or with a wrong one', async () => {
      const user = await makeUser(fx.server.latchkey);
      const { secret, recoveryCodes } = await enrollOverRest(fx.server.url, user.username);
      // Enrolling used up the current time step; sign in with a recovery code, keep the next step for the change.
      const token = await jwtOf(user, PASSWORD, recoveryCodes[0]);
      const email = `two.factor.${user.id}@example.org`;

      const noCode = await api('PATCH', `/api/users/${user.id}/`, token, { email, current_password: PASSWORD });
      expect(noCode.status, noCode.text).toBe(400);
      expect(fieldsOf(noCode)['otp']?.[0]).toMatch(/two-factor authentication/);
      const badCode = await api('PATCH', `/api/users/${user.id}/`, token, { email, current_password: PASSWORD, otp: wrongCode(secret) });
      expect(badCode.status, badCode.text).toBe(400);
      expect(fieldsOf(badCode)['otp']).toEqual(['The code is not valid. Use the current code of your authenticator app.']);
      expect((await fx.server.latchkey.storage.users.findById(user.id))?.pendingEmail).toBeNull();
      const good = await api('PATCH', `/api/users/${user.id}/`, token, { email, current_password: PASSWORD, otp: codeAt(secret, 1) });
      expect(good.status, good.text).toBe(200);
      expect(good.json['pending_email']).toBe(email);

      const codesWithoutPassword = await api('POST', '/api/me/two-factor/recovery-codes/', token, { code: recoveryCodes[1] });
      expect(codesWithoutPassword.status).toBe(400);
      expect(Object.keys(fieldsOf(codesWithoutPassword))).toEqual(['password']);
      const deleteWithoutCode = await api('DELETE', `/api/users/${user.id}/`, token, { current_password: PASSWORD });
      expect(deleteWithoutCode.status).toBe(400);
      expect(Object.keys(fieldsOf(deleteWithoutCode))).toEqual(['otp']);
      expect(await fx.server.latchkey.storage.users.findById(user.id)).toMatchObject({ id: user.id });
    });
  });

  describe('a new address waits for verification', () => {
    it('keeps the old address for sign-in and reset, tells it, and switches only once the new one is verified', async () => {
      const user = await makeUser(fx.server.latchkey);
      const oldAddress = user.email!;
      const newAddress = `new.${oldAddress}`;
      const token = await jwtOf(user);
      const changed = await api('PATCH', `/api/users/${user.id}/`, token, { email: newAddress, current_password: PASSWORD });
      expect(changed.status, changed.text).toBe(200);
      expect(changed.json).toMatchObject({ email: oldAddress, email_verified: true, pending_email: newAddress });

      const notice = await fx.smtp.next(oldAddress);
      expect(notice.subject).toBe('Your email address is being changed');
      expect(notice.text).toContain(newAddress);
      const verification = await fx.smtp.next(newAddress);
      expect(verification.subject).toBe('Confirm your email address');

      // Until then the new address opens nothing: no sign-in, no reset; the old one still does both.
      expect((await api('POST', '/api/token/', undefined, { username: newAddress, password: PASSWORD })).status).toBe(401);
      expect((await api('POST', '/api/token/', undefined, { username: oldAddress, password: PASSWORD })).status).toBe(200);
      await forgot(newAddress);
      expect(await resetLinks(user.id)).toBe(0);
      expect(fx.smtp.to(newAddress)).toHaveLength(1);
      await forgot(oldAddress);
      expect((await fx.smtp.next(oldAddress)).subject).toBe('Reset your password');

      const verified = await pressVerify(verifyLinkIn(verification.text));
      expect(verified.status, verified.html).toBe(200);
      expect(await fx.server.latchkey.storage.users.findById(user.id)).toMatchObject({ email: newAddress, emailVerified: true, pendingEmail: null });
      expect((await api('POST', '/api/token/', undefined, { username: newAddress, password: PASSWORD })).status).toBe(200);
      expect((await api('POST', '/api/token/', undefined, { username: oldAddress, password: PASSWORD })).status).toBe(401);
    });

    it('limits how often one person asks to change their address (429 after 3; mail only for those)', async () => {
      const user = await makeUser(fx.server.latchkey);
      const token = await jwtOf(user);
      const targets = [1, 2, 3, 4].map((i) => `victim${i}.${user.id}@example.net`);
      for (const [i, email] of targets.entries()) {
        const answer = await api('PATCH', `/api/users/${user.id}/`, token, { email, current_password: PASSWORD });
        expect(answer.status, `change ${i + 1}: ${answer.text}`).toBe(i < 3 ? 200 : 429);
        if (i === 3) expect(Number(answer.headers.get('retry-after'))).toBeGreaterThan(0);
      }
      await fx.server.latchkey.services.background.settled();
      expect(targets.map((email) => fx.smtp.to(email).length)).toEqual([1, 1, 1, 0]);
      expect((await fx.server.latchkey.storage.users.findById(user.id))?.pendingEmail).toBe(targets[2]);
    });

    it('mails reset links only to a verified address', async () => {
      const user = await makeUser(fx.server.latchkey, { emailVerified: false });
      await forgot(user.email!);
      expect(await resetLinks(user.id)).toBe(0);
      const audit = await fx.server.latchkey.services.audit.list({ offset: 0, limit: 50, event: 'password_reset.requested' });
      expect(audit.events.find((e) => e.target_id === String(user.id))?.details).toMatchObject({ mail_sent: false, reason: 'unverified_address' });
    });

    it('does not let a verification take an address another account has meanwhile', async () => {
      const user = await makeUser(fx.server.latchkey);
      const wanted = `contested.${user.id}@example.org`;
      const changed = await api('PATCH', `/api/users/${user.id}/`, await jwtOf(user), { email: wanted, current_password: PASSWORD });
      expect(changed.status, changed.text).toBe(200);
      const link = verifyLinkIn((await fx.smtp.next(wanted)).text);
      await makeUser(fx.server.latchkey, { email: wanted });
      const refused = await pressVerify(link);
      expect(refused.status).toBe(400);
      expect(refused.html).toContain('Another account uses this email address now');
      expect((await fx.server.latchkey.storage.users.findById(user.id))?.email).toBe(user.email);
    });
  });
}, { smtp: true });
