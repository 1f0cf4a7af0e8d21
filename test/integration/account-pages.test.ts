import * as oidc from 'openid-client';
import { beforeAll, expect, it } from 'vitest';
import type { User } from '../../src/storage/users.js';
import { accountLogin } from '../helpers/account.js';
import { adminLogin } from '../helpers/admin.js';
import { formOf, UserAgent } from '../helpers/browserless.js';
import { describeOnBackends, signIn, submitForm } from '../helpers/fixture.js';
import { apiAuthorization, apiResourceOf, discover, loginAndExchange, makeClient, makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { linkIn } from '../helpers/smtp.js';
import { codeAt, enrollOverRest, wrongCode } from '../helpers/two-factor.js';
import { OPAQUE_TOKEN } from '../helpers/shapes.js';

const NEW_PASSWORD = 'another long passphrase';

/** A page as the browser got it: status, headers, body and where it sends the browser next. */
interface Page {
  status: number;
  headers: Headers;
  html: string;
  location: string | null;
}

async function read(response: Response): Promise<Page> {
  return { status: response.status, headers: response.headers, html: await response.text(), location: response.headers.get('location') };
}

/**
 * The account center over real HTTP, as a browser without JavaScript uses it: every page
 * and form, the refusals (no CSRF token, anonymous, inactive, another person's ids), and
 * what each action does to sessions and tokens, checked through openid-client.
 */
// Three wrong passwords lock an account, as three wrong logins would.
describeOnBackends('account center pages (%s)', { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3' }, (fx) => {
  let mail: oidc.Configuration;
  let calendar: oidc.Configuration;

  beforeAll(async () => {
    // Three wrong passwords lock an account, as three wrong logins would.
    const a = await makeClient(fx.server.latchkey, { name: 'Mail', grantTypes: ['authorization_code', 'refresh_token'] });
    const b = await makeClient(fx.server.latchkey, { name: 'Calendar', grantTypes: ['authorization_code', 'refresh_token'] });
    mail = await discover(fx.server.issuer, a.client.clientId, a.clientSecret);
    calendar = await discover(fx.server.issuer, b.client.clientId, b.clientSecret);
  });

  const url = (path: string) => `${fx.server.url}${path}`;
  const login = (user: User, password = PASSWORD) => ({ username: user.username, password });

  const open = async (agent: UserAgent, path: string, headers: Record<string, string> = {}) => read(await agent.fetch(url(path), { headers }));

  /** Opens `pagePath` and sends its form whose action contains `action`, with the page's CSRF token unless `csrf` says otherwise. */
  const submit = (agent: UserAgent, pagePath: string, action: string, fields: Record<string, string>, opts: { csrf?: string; headers?: Record<string, string> } = {}): Promise<Page> =>
    submitForm(agent, fx.server.url, pagePath, action, fields, opts);

  /** POSTs a form straight to `path` (no page opened first). */
  const post = async (agent: UserAgent, path: string, fields: Record<string, string>) => read(await agent.postForm(url(path), fields));

  /** A browser signed into the account center as `user`. */
  const signedIn = (user: User, agent = new UserAgent()): Promise<UserAgent> => signIn(fx.server.url, user, { path: '/account/', agent });

  /** Every OIDC row (sessions, grants, tokens) of a user, by model. */
  async function rowsOf(user: User): Promise<Array<{ model: string; id: string; client_id: string | null; uid: string | null }>> {
    return fx.server.latchkey.storage.knex('oidc_payloads').where({ account_id: String(user.id) }).orderBy(['model', 'id']).select('model', 'id', 'client_id', 'uid');
  }

  const grantOf = async (user: User, clientId: string) => (await rowsOf(user)).find((r) => r.model === 'Grant' && r.client_id === clientId)?.id;
  const sessionsOf = async (user: User) => (await rowsOf(user)).filter((r) => r.model === 'Session');
  const auditEvents = async (event: string) => (await fx.server.latchkey.services.audit.list({ offset: 0, limit: 200, event })).events;

  /** Opens a verification link from a mail and presses its Verify button, as a person would. */
  async function pressVerify(mailText: string): Promise<Page> {
    const link = linkIn(mailText, `${fx.server.url}/account/verify-email?token=`);
    const agent = new UserAgent();
    const page = await open(agent, link.slice(fx.server.url.length));
    expect(page.status, page.html).toBe(200);
    const form = formOf(page.html, '/account/verify-email');
    return post(agent, form.action, { csrf: form.csrf, token: new URL(link).searchParams.get('token')! });
  }

  it('sends anonymous visitors to the login page, and answers their forms 401, changing nothing', async () => {
    const anonymous = new UserAgent();
    for (const path of ['/account/', '/account', '/account/password', '/account/applications/', '/account/sessions', '/account/delete']) {
      const page = await open(anonymous, path);
      expect(page.status, path).toBe(302);
      const to = new URL(page.location ?? '');
      expect(to.pathname, path).toBe('/o/auth');
      expect(to.searchParams.get('client_id')).toBe('latchkey-account');
      expect(to.searchParams.get('response_type')).toBe('none');
    }

    const victim = await makeUser(fx.server.latchkey);
    const agent = await signedIn(victim);
    await loginAndExchange(mail, agent, login(victim));
    const grantId = (await grantOf(victim, mail.clientMetadata().client_id))!;
    const sessionUid = (await sessionsOf(victim))[0]!.uid!;
    const before = { user: await fx.server.latchkey.storage.users.findById(victim.id), rows: await rowsOf(victim) };

    const forms: Array<[string, Record<string, string>]> = [
      ['/account/profile', { first_name: 'Mallory', email: 'mallory@example.com', current_password: PASSWORD }],
      ['/account/email/resend', {}],
      ['/account/password', { current_password: PASSWORD, new_password: NEW_PASSWORD, confirm_password: NEW_PASSWORD }],
      [`/account/applications/${grantId}/revoke`, {}],
      [`/account/sessions/${sessionUid}/end`, {}],
      ['/account/delete', { username: victim.username, password: PASSWORD }],
    ];
    for (const [path, fields] of forms) {
      const page = await post(anonymous, path, fields);
      expect(page.status, path).toBe(401);
      expect(page.headers.get('cache-control')).toBe('no-store');
      expect(page.html).toContain('You are no longer signed in, so nothing was changed.');
    }
    expect({ user: await fx.server.latchkey.storage.users.findById(victim.id), rows: await rowsOf(victim) }).toEqual(before);
  });

  it('refuses an inactive person: back to the login page (which refuses them too), forms 401', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = await signedIn(user);
    const csrf = formOf((await open(agent, '/account/')).html, '/account/profile').csrf;
    // Deactivated without the revocation the user service does: the session is still there.
    await fx.server.latchkey.storage.users.setActive(user.id, false);

    const page = await open(agent, '/account/');
    expect(page.status).toBe(302);
    expect(new URL(page.location ?? '').searchParams.get('prompt')).toBe('login');
    const refused = await post(agent, '/account/profile', { csrf, first_name: 'Changed' });
    expect(refused.status).toBe(401);
    expect((await fx.server.latchkey.storage.users.findById(user.id))?.firstName).toBe('Ada');

    const again = await accountLogin(fx.server.url, new UserAgent(), user.username, PASSWORD);
    expect(again.response.status).toBe(401);
    expect(again.html).toContain('Invalid username or password.');
  });

  it('shows the profile, escaped, with the security headers and nothing cached', async () => {
    const user = await makeUser(fx.server.latchkey, { firstName: '<b>Ada</b>', lastName: 'Lovelace' });
    const agent = await signedIn(user);
    const page = await open(agent, '/account/');
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.html).toContain(`Signed in as <strong>${user.username}</strong>`);
    expect(page.html).toContain('&lt;b&gt;Ada&lt;/b&gt; Lovelace');
    expect(page.html).not.toContain('<b>Ada</b>');
    expect(page.html).toContain(user.email!);
    expect(page.html).toMatch(/id="email-status">Verified</);
    expect(page.html).toContain('Member since');
    expect(page.html).toContain('Last sign-in');
    // Verified: nothing to send again.
    expect(page.html).not.toContain('/account/email/resend');
    expect(page.html).toContain('href="/o/session/end"');
  });

  it('edits the profile: only what changed is saved; a new address waits for its verification link', async () => {
    const user = await makeUser(fx.server.latchkey);
    const oldEmail = user.email!;
    const agent = await signedIn(user);
    const newEmail = `new_${user.username}@example.com`;
    const saved = await submit(agent, '/account/', '/account/profile', {
      username: user.username,
      first_name: 'Grace',
      last_name: 'Hopper',
      email: newEmail,
      current_password: PASSWORD,
      // Fields the form does not have are not passed on (mass assignment).
      is_staff: 'on',
      is_superuser: 'on',
      email_verified: 'on',
    });
    expect(saved.status, saved.html).toBe(303);
    expect(saved.location).toBe('/account/?done=profile-saved-verify');

    // The account keeps its verified address until the new one is verified; the page shows both.
    const after = await open(agent, '/account/?done=profile-saved-verify');
    expect(after.html).toContain('We have sent a link to your new email address to verify it.');
    expect(after.html).toMatch(/id="email-status">Verified</);
    expect(after.html).toContain(newEmail);
    expect(after.html).toMatch(/id="pending-email-status">waiting for verification</);
    expect(after.html).toContain('/account/email/resend');
    // The form shows the address in use, and never the password.
    expect(after.html).toContain(`value="${oldEmail}"`);
    expect(after.html).not.toContain(PASSWORD);
    expect(await fx.server.latchkey.storage.users.findById(user.id)).toMatchObject({
      firstName: 'Grace',
      lastName: 'Hopper',
      email: oldEmail,
      emailVerified: true,
      pendingEmail: newEmail,
      isStaff: false,
      isSuperuser: false,
    });
    const verification = await fx.smtp.next(newEmail);
    expect(verification.text).toContain('/account/verify-email?token=');
    const notice = await fx.smtp.next(oldEmail);
    expect(notice.subject).toBe('Your email address is being changed');
    expect(notice.text).toContain(newEmail);
    const updated = (await auditEvents('user.updated')).find((e) => e.target_id === String(user.id));
    expect(updated?.actor).toBe(user.username);
    expect((updated?.details?.['fields'] as string[]).sort()).toEqual(['email', 'first_name', 'last_name']);
    expect(updated?.details?.['email']).toBe('pending_verification');
    const confirmed = (await auditEvents('identity.confirmed')).filter((e) => e.actor_user_id === user.id);
    expect(confirmed.length).toBeGreaterThan(0);

    // The username too, when the user service allows it; the address as the form shows it is no change (no password needed).
    const renamed = `${user.username}_2`;
    const again = await submit(agent, '/account/', '/account/profile', { username: renamed, first_name: 'Grace', last_name: 'Hopper', email: oldEmail });
    expect(again.location).toBe('/account/?done=profile-saved');
    expect((await open(agent, '/account/?done=profile-saved')).html).toContain('Your profile was saved.');
    expect(await fx.server.latchkey.storage.users.findById(user.id)).toMatchObject({ username: renamed, email: oldEmail, pendingEmail: newEmail });

    // Pressing Verify in the link makes the new address the account's, verified.
    const verified = await pressVerify(verification.text);
    expect(verified.status, verified.html).toBe(200);
    expect(verified.html).toContain('Email address verified');
    expect(await fx.server.latchkey.storage.users.findById(user.id)).toMatchObject({ email: newEmail, emailVerified: true, pendingEmail: null });
    const home = await open(agent, '/account/');
    expect(home.html).toMatch(/id="email-status">Verified</);
    expect(home.html).not.toContain('pending-email-status');
    expect(home.html).not.toContain('/account/email/resend');
  });

  it('changes the address only with the current password (and, with two-factor on, a code); a name alone needs neither', async () => {
    const user = await makeUser(fx.server.latchkey);
    const oldEmail = user.email!;
    const agent = await signedIn(user);
    const newEmail = `moved_${user.username}@example.com`;
    const fields = { username: user.username, first_name: 'Grace', last_name: 'Hopper', email: newEmail };
    const before = await fx.server.latchkey.storage.users.findById(user.id);

    const without = await submit(agent, '/account/', '/account/profile', fields);
    expect(without.status, without.html).toBe(400);
    expect(without.html).toContain('Please correct the fields marked below.');
    expect(without.html).toContain('<p class="field-error" id="current_password-error">This field is required.</p>');
    expect(without.html).toContain('aria-invalid="true" aria-describedby="current_password-error"');
    // What was typed is kept, the rest of the change waits too.
    expect(without.html).toContain(`value="${newEmail}"`);
    expect(without.html).toContain('value="Grace"');

    const wrong = await submit(agent, '/account/', '/account/profile', { ...fields, current_password: 'not my password' });
    expect(wrong.status, wrong.html).toBe(400);
    expect(wrong.html).toContain('<p class="field-error" id="current_password-error">The current password is not correct.</p>');
    expect(wrong.html).not.toContain('not my password');
    // A wrong password is a failed sign-in for the throttle and the audit log.
    expect((await auditEvents('login.failure')).some((e) => e.actor_user_id === user.id)).toBe(true);

    expect(await fx.server.latchkey.storage.users.findById(user.id)).toEqual(before);
    await fx.server.latchkey.services.background.settled();
    expect(fx.smtp.to(newEmail)).toHaveLength(0);
    expect(fx.smtp.to(oldEmail)).toHaveLength(0);

    // A new name alone needs no password; one typed anyway is not looked at.
    const named = await submit(agent, '/account/', '/account/profile', { ...fields, email: oldEmail, first_name: 'Named', current_password: 'not looked at' });
    expect(named.status, named.html).toBe(303);
    expect(named.location).toBe('/account/?done=profile-saved');
    expect(await fx.server.latchkey.storage.users.findById(user.id)).toMatchObject({ firstName: 'Named', email: oldEmail, pendingEmail: null });

    const right = await submit(agent, '/account/', '/account/profile', { ...fields, current_password: PASSWORD });
    expect(right.status, right.html).toBe(303);
    expect(right.location).toBe('/account/?done=profile-saved-verify');
    expect(await fx.server.latchkey.storage.users.findById(user.id)).toMatchObject({ email: oldEmail, emailVerified: true, pendingEmail: newEmail });
    expect((await fx.smtp.next(newEmail)).text).toContain('/account/verify-email?token=');
    expect((await fx.smtp.next(oldEmail)).subject).toBe('Your email address is being changed');

    // "Send again" sends a new link to the pending address, not to the one in use.
    const resent = await submit(agent, '/account/', '/account/email/resend', {});
    expect(resent.status, resent.html).toBe(303);
    expect(resent.location).toBe('/account/?done=verification-sent');
    const again = await fx.smtp.next(newEmail);
    expect(again.text).toContain('/account/verify-email?token=');
    await fx.server.latchkey.services.background.settled();
    expect(fx.smtp.to(oldEmail)).toHaveLength(1);
    expect((await pressVerify(again.text)).status).toBe(200);
    expect(await fx.server.latchkey.storage.users.findById(user.id)).toMatchObject({ email: newEmail, emailVerified: true, pendingEmail: null });
  });

  it('with two-factor on, a new address also needs the code; the password and delete pages ask for it too', async () => {
    const user = await makeUser(fx.server.latchkey);
    const oldEmail = user.email!;
    // Signed in first: from now on the sign-in would ask for a code.
    const agent = await signedIn(user);
    const { secret } = await enrollOverRest(fx.server.url, user.username);
    const profile = await open(agent, '/account/');
    expect(profile.html).toContain('name="otp"');
    for (const pagePath of ['/account/password', '/account/delete']) expect((await open(agent, pagePath)).html, pagePath).toContain('name="otp"');

    const newEmail = `second_${user.username}@example.com`;
    const fields = { username: user.username, first_name: 'Ada', last_name: 'Lovelace', email: newEmail, current_password: PASSWORD };
    const noCode = await submit(agent, '/account/', '/account/profile', fields);
    expect(noCode.status, noCode.html).toBe(400);
    expect(noCode.html).toContain(
      '<p class="field-error" id="otp-error">This account uses two-factor authentication: enter the current code of your authenticator app (or a recovery code).</p>',
    );
    const badCode = await submit(agent, '/account/', '/account/profile', { ...fields, otp: wrongCode(secret) });
    expect(badCode.status, badCode.html).toBe(400);
    expect(badCode.html).toContain('<p class="field-error" id="otp-error">The code is not valid. Use the current code of your authenticator app.</p>');
    expect(await fx.server.latchkey.storage.users.findById(user.id)).toMatchObject({ email: oldEmail, pendingEmail: null });
    await fx.server.latchkey.services.background.settled();
    expect(fx.smtp.to(newEmail)).toHaveLength(0);

    // Enrolling used up the current time step: the next one.
    const good = await submit(agent, '/account/', '/account/profile', { ...fields, otp: codeAt(secret, 1) });
    expect(good.status, good.html).toBe(303);
    expect(good.location).toBe('/account/?done=profile-saved-verify');
    expect(await fx.server.latchkey.storage.users.findById(user.id)).toMatchObject({ email: oldEmail, emailVerified: true, pendingEmail: newEmail });
    expect((await fx.smtp.next(newEmail)).text).toContain('/account/verify-email?token=');
  });

  it('keeps what was typed and says what is wrong; a form without this browser’s token changes nothing', async () => {
    const user = await makeUser(fx.server.latchkey);
    const other = await makeUser(fx.server.latchkey);
    const agent = await signedIn(user);
    const typed = { username: user.username, first_name: 'Typed', last_name: 'Name', email: 'not-an-email' };

    const invalid = await submit(agent, '/account/', '/account/profile', typed);
    expect(invalid.status).toBe(400);
    expect(invalid.html).toContain('Please correct the fields marked below.');
    expect(invalid.html).toContain('<p class="field-error" id="email-error">Enter a valid email address.</p>');
    expect(invalid.html).toContain('aria-invalid="true" aria-describedby="email-error"');
    expect(invalid.html).toContain('value="Typed"');
    expect(invalid.html).toContain('value="not-an-email"');

    const badName = await submit(agent, '/account/', '/account/profile', { ...typed, username: 'two words', email: user.email! });
    expect(badName.status).toBe(400);
    expect(badName.html).toContain('Username may contain only letters, digits and @ . + - _ characters.');
    expect(badName.html).toContain('value="two words"');

    const taken = await submit(agent, '/account/', '/account/profile', { ...typed, username: other.username, email: user.email! });
    expect(taken.status).toBe(409);
    expect(taken.html).toContain('A user with that username already exists.');
    expect(taken.html).toContain(`value="${other.username}"`);

    const forged = await submit(agent, '/account/', '/account/profile', { ...typed, email: user.email! }, { csrf: 'x'.repeat(43) });
    expect(forged.status).toBe(403);
    expect(forged.html).toContain('This form has expired. Please try again.');
    expect(forged.html).toContain('value="Typed"');

    expect(await fx.server.latchkey.storage.users.findById(user.id)).toMatchObject({ username: user.username, firstName: 'Ada', email: user.email });
  });

  it('sends the verification mail again on request, at most three times a window', async () => {
    const user = await makeUser(fx.server.latchkey, { emailVerified: false });
    const agent = await signedIn(user);
    expect((await open(agent, '/account/')).html).toMatch(/id="email-status">Not verified</);

    const forged = await submit(agent, '/account/', '/account/email/resend', {}, { csrf: 'x'.repeat(43) });
    expect(forged.status).toBe(403);
    await fx.server.latchkey.services.background.settled();
    expect(fx.smtp.to(user.email!)).toHaveLength(0);

    for (let i = 0; i < 3; i++) {
      const sent = await submit(agent, '/account/', '/account/email/resend', {});
      expect(sent.status, sent.html).toBe(303);
      expect(sent.location).toBe('/account/?done=verification-sent');
      expect((await fx.smtp.next(user.email!)).text).toContain('/account/verify-email?token=');
    }
    expect((await open(agent, '/account/?done=verification-sent')).html).toContain('We have sent a new verification link to your email address.');
    const throttled = await submit(agent, '/account/', '/account/email/resend', {});
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(throttled.html).toMatch(/Too many requests\. Try again in \d+ minutes?\./);
    await fx.server.latchkey.services.background.settled();
    expect(fx.smtp.to(user.email!)).toHaveLength(3);

    // A verified address has nothing to send.
    const verified = await signedIn(await makeUser(fx.server.latchkey));
    const csrf = formOf((await open(verified, '/account/')).html, '/account/profile').csrf;
    const nothing = await post(verified, '/account/email/resend', { csrf });
    expect(nothing.status).toBe(400);
    expect(nothing.html).toContain('There is no unverified email address to send a link to.');
  });

  it('changes the password: this browser stays signed in, every other session and token ends', async () => {
    const user = await makeUser(fx.server.latchkey);
    const laptop = await signedIn(user);
    await loginAndExchange(mail, laptop, login(user));
    const phone = new UserAgent();
    const onPhone = (await loginAndExchange(calendar, phone, login(user))).tokens;
    const change = (fields: Record<string, string>, options?: { csrf?: string }) => submit(laptop, '/account/password', '/account/password', fields, options);

    const mismatch = await change({ current_password: PASSWORD, new_password: NEW_PASSWORD, confirm_password: `${NEW_PASSWORD}!` });
    expect(mismatch.status).toBe(400);
    expect(mismatch.html).toContain('The two passwords do not match.');
    const wrong = await change({ current_password: 'not my password', new_password: NEW_PASSWORD, confirm_password: NEW_PASSWORD });
    expect(wrong.status).toBe(400);
    expect(wrong.html).toContain('The current password is not correct.');
    const short = await change({ current_password: PASSWORD, new_password: 'short', confirm_password: 'short' });
    expect(short.status).toBe(400);
    expect(short.html).toContain('Password must be at least 8 characters.');
    const forged = await change({ current_password: PASSWORD, new_password: NEW_PASSWORD, confirm_password: NEW_PASSWORD }, { csrf: 'x'.repeat(43) });
    expect(forged.status).toBe(403);
    // Nothing was echoed back, and nothing changed.
    for (const page of [mismatch, wrong, short, forged]) expect(page.html).not.toContain(NEW_PASSWORD);
    expect(await fx.server.latchkey.services.hasher.verify(PASSWORD, (await fx.server.latchkey.storage.users.findById(user.id))!.passwordHash)).toBe(true);
    expect(await sessionsOf(user)).toHaveLength(2);

    const changed = await change({ current_password: PASSWORD, new_password: NEW_PASSWORD, confirm_password: NEW_PASSWORD });
    expect(changed.status, changed.html).toBe(303);
    expect(changed.location).toBe('/account/password?done=password-changed');
    expect((await open(laptop, '/account/password?done=password-changed')).html).toContain('Your password was changed.');

    // This browser: still signed in, with the account center's grant; the phone: signed out, its tokens dead.
    expect((await open(laptop, '/account/')).status).toBe(200);
    expect((await sessionsOf(user)).map((s) => s.uid)).toHaveLength(1);
    expect(await grantOf(user, 'latchkey-account')).toMatch(OPAQUE_TOKEN);
    expect(await grantOf(user, mail.clientMetadata().client_id)).toBeUndefined();
    await expect(oidc.refreshTokenGrant(calendar, onPhone.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.fetchUserInfo(calendar, onPhone.access_token, oidc.skipSubjectCheck)).rejects.toThrow();
    const phoneAgain = await phone.follow(
      oidc.buildAuthorizationUrl(calendar, { redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }),
    );
    expect(await phoneAgain.response.text()).toContain('name="password"');
    const apiLogin = async (password: string) =>
      (await fetch(url('/api/token/'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: user.username, password }) })).status;
    expect(await apiLogin(PASSWORD)).toBe(401);
    expect(await apiLogin(NEW_PASSWORD)).toBe(200);
  });

  it('a staff member who changed the password here signs into the admin pages again without a consent page', async () => {
    const staff = await makeUser(fx.server.latchkey, { isStaff: true });
    const agent = new UserAgent();
    expect((await adminLogin(fx.server.url, agent, staff.username, PASSWORD)).response.status).toBe(200);
    await signedIn(staff, agent);
    const changed = await submit(agent, '/account/password', '/account/password', { current_password: PASSWORD, new_password: NEW_PASSWORD, confirm_password: NEW_PASSWORD });
    expect(changed.status).toBe(303);
    // The admin pages' grant went with the password change; the session stayed.
    expect(await grantOf(staff, 'latchkey-admin')).toBeUndefined();
    // A new round through /o/auth (a stale callback starts one) makes it again instead of asking for consent.
    const again = await agent.follow(url('/admin/callback?state=stale'));
    expect(again.url.pathname).toBe('/admin/');
    expect(again.response.status).toBe(200);
    expect(await grantOf(staff, 'latchkey-admin')).toMatch(OPAQUE_TOKEN);
  });

  it('counts wrong passwords on the password and delete pages like failed logins (429 with Retry-After)', async () => {
    const pages: Array<[string, string, (user: User, password: string) => Record<string, string>]> = [
      ['/account/password', '/account/password', (_user, password) => ({ current_password: password, new_password: NEW_PASSWORD, confirm_password: NEW_PASSWORD })],
      ['/account/delete', '/account/delete', (user, password) => ({ username: user.username, password })],
      [
        '/account/',
        '/account/profile',
        (user, password) => ({ username: user.username, first_name: '', last_name: '', email: `guess_${user.username}@example.com`, current_password: password }),
      ],
    ];
    for (const [pagePath, action, fields] of pages) {
      const user = await makeUser(fx.server.latchkey);
      const agent = await signedIn(user);
      for (let i = 0; i < 3; i++) expect((await submit(agent, pagePath, action, fields(user, 'wrong guess number'))).status, pagePath).toBe(400);
      const locked = await submit(agent, pagePath, action, fields(user, PASSWORD));
      expect(locked.status, pagePath).toBe(429);
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(locked.html).toMatch(/Too many failed sign-in attempts\. Try again in \d+ minutes?\./);
      const stored = await fx.server.latchkey.storage.users.findById(user.id);
      expect(stored && (await fx.server.latchkey.services.hasher.verify(PASSWORD, stored.passwordHash)), pagePath).toBe(true);
      expect(stored?.pendingEmail, pagePath).toBeNull();
    }
  });

  it('lists connected applications with their scopes in words, and revokes one with its tokens', async () => {
    const user = await makeUser(fx.server.latchkey);
    const laptop = await signedIn(user);
    const inMail = (await loginAndExchange(mail, laptop, login(user))).tokens;
    const inCalendar = (await loginAndExchange(calendar, new UserAgent(), login(user))).tokens;

    const page = await open(laptop, '/account/applications');
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.html).toContain('<h2>Mail</h2>');
    expect(page.html).toContain('<h2>Calendar</h2>');
    for (const words of ['Sign you in with your Latchkey account', 'See your name and username', 'See your email address and whether it is verified']) {
      expect(page.html).toContain(words);
    }
    // The account center's own grant is not among them.
    const ownGrant = (await grantOf(user, 'latchkey-account'))!;
    expect(ownGrant).toMatch(OPAQUE_TOKEN);
    expect(page.html).not.toContain(ownGrant);
    expect(page.html).not.toContain('<h2>Latchkey account</h2>');

    const calendarGrant = (await grantOf(user, calendar.clientMetadata().client_id))!;
    const revokeAction = `/account/applications/${calendarGrant}/revoke`;
    const forged = await submit(laptop, '/account/applications', revokeAction, {}, { csrf: 'x'.repeat(43) });
    expect(forged.status).toBe(403);
    expect(await grantOf(user, calendar.clientMetadata().client_id)).toBe(calendarGrant);

    const revoked = await submit(laptop, '/account/applications', revokeAction, {});
    expect(revoked.status, revoked.html).toBe(303);
    expect(revoked.location).toBe('/account/applications?done=app-revoked');
    await expect(oidc.refreshTokenGrant(calendar, inCalendar.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.fetchUserInfo(calendar, inCalendar.access_token, oidc.skipSubjectCheck)).rejects.toThrow();
    expect((await oidc.fetchUserInfo(mail, inMail.access_token, String(user.id))).sub).toBe(String(user.id));
    const after = await open(laptop, '/account/applications?done=app-revoked');
    expect(after.html).toContain('Access was revoked');
    expect(after.html).not.toContain('<h2>Calendar</h2>');
    const audit = (await auditEvents('grant.revoked')).find((e) => e.target_id === calendarGrant);
    expect(audit).toMatchObject({ actor: user.username, details: { via: 'self-service' } });
  });

  it('names the APIs an application may use for the person, with their scopes in words', async () => {
    const user = await makeUser(fx.server.latchkey);
    const laptop = await signedIn(user);
    // Only the API scopes staff registered the app for, and only those it asked for.
    const registered = await makeClient(fx.server.latchkey, { name: 'Dashboard', grantTypes: ['authorization_code', 'refresh_token'], apiScopes: ['users:read', 'account'] });
    const dashboard = await discover(fx.server.issuer, registered.client.clientId, registered.clientSecret);
    const api = apiResourceOf(fx.server.latchkey);
    const { tokens } = await loginAndExchange(dashboard, laptop, login(user), apiAuthorization(fx.server.latchkey, ['users:read', 'account'], 'openid'));
    expect(tokens.access_token.split('.')).toHaveLength(3);
    const page = await open(laptop, '/account/applications');
    expect(page.html).toContain('<h2>Dashboard</h2>');
    expect(page.html).toContain(`data-resource="${api}"`);
    expect(page.html).toContain('Use Latchkey REST API on your behalf');
    expect(page.html).toContain('Read your Latchkey account details (and, if you are staff, every account)');
    expect(page.html).toContain('Manage your password, two-factor authentication, connected applications and sessions');
    expect(page.html).toContain('<code>users:read</code>');
    expect(page.html).toContain('<code>account</code>');
    // Not asked for, not granted, not shown.
    expect(page.html).not.toContain('Change or delete your Latchkey account');
    expect(page.html).not.toContain('Administer Latchkey as you');
    const french = await open(laptop, '/account/applications', { 'accept-language': 'fr' });
    expect(french.html).toContain('Utiliser Latchkey REST API en votre nom');
    expect(french.html).toContain('Lire les informations de votre compte Latchkey');
    expect(french.html).toContain('Gérer votre mot de passe, la double authentification, les applications connectées et les sessions');
  });

  it("refuses to revoke another person's grant, the account center's own, or one that is gone (404)", async () => {
    const alice = await makeUser(fx.server.latchkey);
    const mallory = await makeUser(fx.server.latchkey);
    await loginAndExchange(mail, new UserAgent(), login(alice));
    const alicesGrant = (await grantOf(alice, mail.clientMetadata().client_id))!;
    const agent = await signedIn(mallory);
    const csrf = formOf((await open(agent, '/account/')).html, '/account/profile').csrf;
    const ownGrant = (await grantOf(mallory, 'latchkey-account'))!;

    for (const grantId of [alicesGrant, ownGrant, 'no-such-grant']) {
      const refused = await post(agent, `/account/applications/${grantId}/revoke`, { csrf });
      expect(refused.status, grantId).toBe(404);
      expect(refused.html).toContain('That application is not connected to your account.');
    }
    expect(await grantOf(alice, mail.clientMetadata().client_id)).toBe(alicesGrant);
    expect(await grantOf(mallory, 'latchkey-account')).toBe(ownGrant);
    expect((await open(agent, '/account/')).status).toBe(200);
  });

  it('lists sessions, marks this device, signs another one out, and then this one', async () => {
    const user = await makeUser(fx.server.latchkey);
    const laptop = await signedIn(user);
    const phone = new UserAgent();
    const onPhone = (await loginAndExchange(calendar, phone, login(user))).tokens;
    const sessions = await fx.server.latchkey.services.selfService.sessions(user);
    const phoneSession = sessions.find((s) => s.applications.some((a) => a.client_name === 'Calendar'))!;
    const laptopSession = sessions.find((s) => s !== phoneSession)!;

    const page = await open(laptop, '/account/sessions');
    expect(page.status).toBe(200);
    expect(page.html.match(/class="badge">This device</g)).toHaveLength(1);
    expect(page.html).toContain('Applications: Calendar');
    expect(page.html).toContain('Applications: Latchkey account');
    expect(page.html).toContain(`/account/sessions/${phoneSession.id}/end`);
    expect(page.html).toMatch(/Signed in on .+ UTC/);

    const phoneAction = `/account/sessions/${phoneSession.id}/end`;
    const forged = await submit(laptop, '/account/sessions', phoneAction, {}, { csrf: 'x'.repeat(43) });
    expect(forged.status).toBe(403);
    expect(await sessionsOf(user)).toHaveLength(2);

    const ended = await submit(laptop, '/account/sessions', phoneAction, {});
    expect(ended.status, ended.html).toBe(303);
    expect(ended.location).toBe('/account/sessions?done=session-ended');
    expect((await open(laptop, '/account/sessions?done=session-ended')).html).toContain('That session was signed out.');
    expect((await sessionsOf(user)).map((s) => s.uid)).toEqual([laptopSession.id]);
    await expect(oidc.fetchUserInfo(calendar, onPhone.access_token, oidc.skipSubjectCheck)).rejects.toThrow();

    // This device last: the login ends, and the account center leads to the login page.
    const self = await submit(laptop, '/account/sessions', `/account/sessions/${laptopSession.id}/end`, {});
    expect(self.status).toBe(303);
    expect(self.location).toBe('/account/');
    expect(await sessionsOf(user)).toHaveLength(0);
    const back = await laptop.follow(url('/account/'));
    expect(back.url.pathname).toMatch(/^\/interaction\//);
    expect(await back.response.text()).toContain('name="password"');
  });

  it("refuses to end another person's session (404), which goes on", async () => {
    const alice = await makeUser(fx.server.latchkey);
    const mallory = await makeUser(fx.server.latchkey);
    const alicesBrowser = await signedIn(alice);
    const alicesSession = (await sessionsOf(alice))[0]!.uid!;
    const agent = await signedIn(mallory);
    const csrf = formOf((await open(agent, '/account/')).html, '/account/profile').csrf;
    for (const uid of [alicesSession, 'no-such-session']) {
      const refused = await post(agent, `/account/sessions/${uid}/end`, { csrf });
      expect(refused.status, uid).toBe(404);
      expect(refused.html).toContain('That session has already ended.');
    }
    expect((await sessionsOf(alice)).map((s) => s.uid)).toEqual([alicesSession]);
    expect((await open(alicesBrowser, '/account/')).status).toBe(200);
  });

  it('deletes the account once the username is typed and the password given; then nobody is signed in', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = await signedIn(user);
    const inMail = (await loginAndExchange(mail, agent, login(user))).tokens;
    const page = await open(agent, '/account/delete');
    expect(page.status).toBe(200);
    expect(page.html).toContain(`This deletes the account <strong>${user.username}</strong> for good`);
    const remove = (fields: Record<string, string>, options?: { csrf?: string }) => submit(agent, '/account/delete', '/account/delete', fields, options);

    const wrongName = await remove({ username: `${user.username}x`, password: PASSWORD });
    expect(wrongName.status).toBe(400);
    expect(wrongName.html).toContain('Type your username exactly as shown.');
    expect(wrongName.html).toContain(`value="${user.username}x"`);
    const wrongPassword = await remove({ username: user.username, password: 'not my password' });
    expect(wrongPassword.status).toBe(400);
    expect(wrongPassword.html).toContain('The password is not correct.');
    const forged = await remove({ username: user.username, password: PASSWORD }, { csrf: 'x'.repeat(43) });
    expect(forged.status).toBe(403);
    expect(await fx.server.latchkey.storage.users.findById(user.id)).toMatchObject({ id: user.id });

    const deleted = await remove({ username: user.username, password: PASSWORD });
    expect(deleted.status, deleted.html).toBe(200);
    expect(deleted.html).toContain('Account deleted');
    expect(deleted.html).not.toContain('account-nav');
    expect(await fx.server.latchkey.storage.users.findById(user.id)).toBeUndefined();
    expect(await rowsOf(user)).toEqual([]);
    await expect(oidc.refreshTokenGrant(mail, inMail.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const after = await open(agent, '/account/');
    expect(after.status).toBe(302);
    expect(after.location).toContain('/o/auth?');
    const audit = (await auditEvents('user.deleted')).find((e) => e.target_id === String(user.id));
    expect(audit).toMatchObject({ actor: user.username, actor_user_id: user.id, details: { username: user.username } });
  });

  it('refuses to delete the last active superuser, on this page and over REST', async () => {
    const root = await makeUser(fx.server.latchkey, { isStaff: true, isSuperuser: true });
    await makeUser(fx.server.latchkey, { isStaff: true, isSuperuser: true, isActive: false });
    const agent = await signedIn(root);
    const page = await open(agent, '/account/delete');
    expect(page.html).toContain('You are the last superuser: make someone else a superuser before you delete your account.');
    expect(page.html).not.toContain('action="/account/delete"');

    const csrf = formOf((await open(agent, '/account/')).html, '/account/profile').csrf;
    const refused = await post(agent, '/account/delete', { csrf, username: root.username, password: PASSWORD });
    expect(refused.status).toBe(409);
    expect(refused.html).toContain('You are the last superuser');
    const token = await fx.apiLogin(root.username);
    // With the password the deletion of one's own account needs: the rule, not the proof, refuses it.
    const overRest = await fetch(url(`/api/users/${root.id}/`), {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token.access}`, 'content-type': 'application/json' },
      body: JSON.stringify({ current_password: PASSWORD }),
    });
    expect(overRest.status).toBe(409);
    expect(await fx.server.latchkey.storage.users.findById(root.id)).toMatchObject({ id: root.id });

    // With another active superuser, they may go.
    await makeUser(fx.server.latchkey, { isStaff: true, isSuperuser: true });
    const allowed = await submit(agent, '/account/delete', '/account/delete', { username: root.username, password: PASSWORD });
    expect(allowed.status, allowed.html).toBe(200);
    expect(await fx.server.latchkey.storage.users.findById(root.id)).toBeUndefined();
  });

  it('speaks French to a French browser, messages from the services included', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = await signedIn(user);
    const french = { 'accept-language': 'fr-FR,fr;q=0.9,en;q=0.5' };
    const home = await open(agent, '/account/', french);
    expect(home.html).toContain('<html lang="fr">');
    expect(home.html).toContain('<h1>Profil</h1>');
    expect(home.html).toContain(`Connecté en tant que <strong>${user.username}</strong>`);
    expect(home.html).toContain('UTC');
    const wrong = await submit(agent, '/account/password', '/account/password', { current_password: 'pas le bon', new_password: NEW_PASSWORD, confirm_password: NEW_PASSWORD }, { headers: french });
    expect(wrong.status).toBe(400);
    expect(wrong.html).toContain('Veuillez corriger les champs signalés ci-dessous.');
    expect(wrong.html).toContain('Le mot de passe actuel est incorrect.');
    const email = await submit(agent, '/account/', '/account/profile', { username: user.username, first_name: '', last_name: '', email: 'pas-une-adresse' }, { headers: french });
    expect(email.html).toContain('Saisissez une adresse e-mail valide.');
  });

  it('links two-factor authentication from the nav', async () => {
    const user = await makeUser(fx.server.latchkey);
    expect((await open(await signedIn(user), '/account/')).html).toContain('<a href="/account/two-factor">Two-factor authentication</a>');
  });
}, { smtp: true });
