import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as oidc from 'openid-client';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey } from '../../src/start.js';
import { formOf, UserAgent } from '../helpers/browserless.js';
import { freshDatabase } from '../helpers/database.js';
import { BACKENDS } from '../helpers/env.js';
import { callApi, type Answer, type ApiRequest } from '../helpers/http.js';
import { describeOnBackends, apiLogin as sharedApiLogin, getPage, hiddenFieldsOf, submitForm, type ApiPair } from '../helpers/fixture.js';
import { authorizationRequest, discover, loginAndExchange, makeClient, makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { startTestServer, testEnv } from '../helpers/server.js';
import { linkIn, parseMail, type ReceivedMail } from '../helpers/smtp.js';
import { OPAQUE_TOKEN } from '../helpers/shapes.js';

/**
 * Email verification and password reset over real HTTP, with a real SMTP server in the test
 * process: each test reads the mail Latchkey sent and follows the link in it, as a person
 * would. Expiry is simulated by moving expires_at in the database; there is no test clock.
 */

const NEW_PASSWORD = 'a brand new passphrase for me';
const INVALID_LINK = 'invalid, was already used, or has expired';

let counter = 0;
const unique = (prefix: string) => `${prefix}_${process.pid}_${++counter}_${Math.random().toString(36).slice(2, 6)}`;

describeOnBackends('email verification and password reset (%s)', { TRUST_PROXY: '1' }, (fx) => {
  let config: oidc.Configuration;
  /** Each test sends its reset requests from its own address (TRUST_PROXY), so per-IP limits never mix. */
  let ipCounter = 0;
  const freshIp = () => `198.51.100.${++ipCounter}`;

  beforeAll(async () => {
    const made = await makeClient(fx.server.latchkey);
    config = await discover(fx.server.issuer, made.client.clientId, made.clientSecret ?? '');
  });

  const api = (method: string, route: string, opts: ApiRequest = {}): Promise<Answer> => callApi(fx.server.url, method, route, opts);

  const tokenAnswer = (username: string, password: string) => api('POST', '/api/token/', { json: { username, password } });

  const apiLogin = (username: string, password = PASSWORD): Promise<ApiPair> => sharedApiLogin(fx.server.url, username, password);

  /** The user as the API shows it to themself. */
  async function userJson(username: string, id: number, password = PASSWORD): Promise<Record<string, unknown>> {
    const { access } = await apiLogin(username, password);
    const answer = await api('GET', `/api/users/${id}/`, { token: access });
    expect(answer.status, answer.text).toBe(200);
    return answer.json;
  }

  /** Self-registration through the REST API; the verification mail goes out in the background. */
  async function register(): Promise<{ id: number; username: string; email: string }> {
    const username = unique('reg');
    const email = `${username}@example.com`;
    const answer = await api('POST', '/api/users/', { json: { username, email, password: PASSWORD } });
    expect(answer.status, answer.text).toBe(201);
    expect(answer.json['email_verified']).toBe(false);
    return { id: Number(answer.json['id']), username, email };
  }

  const verifyLinkOf = (mail: ReceivedMail) => linkIn(mail.text, `${fx.server.url}/account/verify-email?token=`);
  const resetLinkOf = (mail: ReceivedMail) => linkIn(mail.text, `${fx.server.url}/account/password/reset?token=`);

  const get = (agent: UserAgent, url: string) => getPage(agent, url, url);

  /** Presses the form on a page (a GET of `url`) with `fields` added. */
  const submit = (agent: UserAgent, url: string, action: string, fields: Record<string, string> = {}, ip?: string) =>
    submitForm(agent, url, url, action, fields, { hidden: true, postHeaders: ip ? { 'x-forwarded-for': ip } : {} });

  const hiddenFields = hiddenFieldsOf;

  const forgot = (agent: UserAgent, email: string, ip = freshIp()) =>
    submit(agent, `${fx.server.url}/account/password/forgot`, '/account/password/forgot', { email }, ip);

  const auditEvents = async (event: string, userId: number) =>
    fx.server.latchkey.storage.knex('audit_events').where({ event, target_id: String(userId) }).select('details');

  // ------------------------------------------------------------------ verification

  it('mails a verification link on registration; opening it does not verify, pressing Verify does, once', async () => {
    const user = await register();
    const mail = await fx.smtp.next(user.email);
    expect(mail.subject).toBe('Confirm your email address');
    expect(mail.envelopeFrom).toBe(`no-reply@${new URL(fx.server.url).hostname}`);
    expect(mail.headers.get('from')).toContain(`<no-reply@${new URL(fx.server.url).hostname}>`);
    expect(mail.text).toContain(user.username);
    expect(mail.text).toContain('24 hours');
    const link = verifyLinkOf(mail);
    expect(mail.html).toContain(`href="${link}"`);
    // Only a hash of the token is stored.
    const token = new URL(link).searchParams.get('token')!;
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const rows = await fx.server.latchkey.storage.knex('email_tokens').where({ user_id: user.id });
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(token);
    expect(rows[0]).toMatchObject({ purpose: 'verify_email', email: user.email });
    expect(Number(rows[0].expires_at) - Number(rows[0].created_at)).toBe(24 * 3600 * 1000);

    // Mail scanners prefetch links: any number of GETs leaves the address unverified.
    const agent = new UserAgent();
    for (let i = 0; i < 2; i++) {
      const page = await get(agent, link);
      expect(page.status).toBe(200);
      expect(page.headers.get('cache-control')).toBe('no-store');
      expect(page.headers.get('referrer-policy')).toBe('no-referrer');
      expect(page.html).toContain(user.email);
    }
    expect((await userJson(user.username, user.id))['email_verified']).toBe(false);

    const verified = await submit(agent, link, '/account/verify-email');
    expect(verified.status, verified.html).toBe(200);
    expect(verified.html).toContain('Email address verified');
    expect((await userJson(user.username, user.id))['email_verified']).toBe(true);
    expect(await auditEvents('email.verified', user.id)).toHaveLength(1);

    // Used: the link now shows the invalid page, and a replayed POST is refused.
    const again = await get(agent, link);
    expect(again.status).toBe(400);
    expect(again.html).toContain(INVALID_LINK);
    const csrf = formOf((await get(agent, `${fx.server.url}/account/password/forgot`)).html, '/forgot').csrf;
    const replay = await agent.postForm(`${fx.server.url}/account/verify-email`, { csrf, token });
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain(INVALID_LINK);
  });

  it('also mails a verification link on /users/register/', async () => {
    const username = unique('legacy');
    const email = `${username}@example.com`;
    const response = await fetch(`${fx.server.url}/users/register/`, {
      method: 'POST',
      body: new URLSearchParams({ username, email, password: PASSWORD, confirm_password: PASSWORD }),
    });
    expect(response.status).toBe(201);
    expect(verifyLinkOf(await fx.smtp.next(email))).toContain('token=');
  });

  it('refuses a verification POST without the right CSRF token, and the link still works afterwards', async () => {
    const user = await register();
    const link = verifyLinkOf(await fx.smtp.next(user.email));
    const agent = new UserAgent();
    await get(agent, link);
    const token = new URL(link).searchParams.get('token')!;
    const forged = await agent.postForm(`${fx.server.url}/account/verify-email`, { csrf: 'x'.repeat(43), token });
    expect(forged.status).toBe(403);
    expect(await forged.text()).toContain('This form has expired');
    // From another browser (no CSRF cookie) too.
    const other = await new UserAgent().postForm(`${fx.server.url}/account/verify-email`, { csrf: 'x'.repeat(43), token });
    expect(other.status).toBe(403);
    expect((await userJson(user.username, user.id))['email_verified']).toBe(false);
    expect((await submit(agent, link, '/account/verify-email')).status).toBe(200);
    expect((await userJson(user.username, user.id))['email_verified']).toBe(true);
  });

  it('refuses an expired verification link', async () => {
    const user = await register();
    const link = verifyLinkOf(await fx.smtp.next(user.email));
    await fx.server.latchkey.storage.knex('email_tokens').where({ user_id: user.id }).update({ expires_at: Date.now() - 1 });
    const agent = new UserAgent();
    const page = await get(agent, link);
    expect(page.status).toBe(400);
    expect(page.html).toContain(INVALID_LINK);
    const csrf = formOf((await get(agent, `${fx.server.url}/account/password/forgot`)).html, '/forgot').csrf;
    const posted = await agent.postForm(`${fx.server.url}/account/verify-email`, { csrf, token: new URL(link).searchParams.get('token')! });
    expect(posted.status).toBe(400);
    expect((await userJson(user.username, user.id))['email_verified']).toBe(false);
    // The sweep deletes expired tokens.
    await fx.server.latchkey.sweep();
    expect(await fx.server.latchkey.storage.knex('email_tokens').where({ user_id: user.id })).toHaveLength(0);
  });

  /** A person's own change of address over REST, with the proof it needs: the new one waits, pending. */
  async function changeOwnEmail(user: { id: number; username: string; email: string }, newEmail: string): Promise<void> {
    const { access } = await apiLogin(user.username);
    // Without the current password the change is refused, and nothing changes or is mailed.
    const unproven = await api('PATCH', `/api/users/${user.id}/`, { token: access, json: { email: newEmail } });
    expect(unproven.status, unproven.text).toBe(400);
    expect(Object.keys(unproven.json['fields'] as object)).toEqual(['current_password']);
    expect(await userJson(user.username, user.id)).toMatchObject({ email: user.email, pending_email: null });

    const changed = await api('PATCH', `/api/users/${user.id}/`, { token: access, json: { email: newEmail, current_password: PASSWORD } });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.json).toMatchObject({ email: user.email, pending_email: newEmail, email_verified: false });
  }

  it('an earlier link still verifies the old address while it is current; the new link makes the pending one the account\'s', async () => {
    const user = await register();
    const oldLink = verifyLinkOf(await fx.smtp.next(user.email));
    const newEmail = `new.${user.email}`;
    await changeOwnEmail(user, newEmail);

    // The verification link goes to the new address; the old one gets a notice, with no link to verify anything.
    const toNew = await fx.smtp.next(newEmail);
    expect(toNew.subject).toBe('Confirm your email address');
    const newLink = verifyLinkOf(toNew);
    const notice = await fx.smtp.next(user.email);
    expect(notice.subject).toBe('Your email address is being changed');
    expect(notice.text).toContain(newEmail);
    expect(notice.text).not.toContain('/account/verify-email');
    await fx.server.latchkey.services.background.settled();
    expect(fx.smtp.to(user.email)).toHaveLength(2);
    expect(fx.smtp.to(newEmail)).toHaveLength(1);

    // Each link names the address it verifies.
    const agent = new UserAgent();
    expect((await get(agent, oldLink)).html).toContain(`<strong>${user.email}</strong>`);
    expect((await get(agent, newLink)).html).toContain(`<strong>${newEmail}</strong>`);

    // The old address is still the account's: its link verifies it, and the change still waits.
    const old = await submit(agent, oldLink, '/account/verify-email');
    expect(old.status, old.html).toBe(200);
    expect(old.html).toContain('Email address verified');
    expect(await userJson(user.username, user.id)).toMatchObject({ email: user.email, email_verified: true, pending_email: newEmail });

    // Pressing Verify in the new address's link switches the account to it, verified.
    const switched = await submit(agent, newLink, '/account/verify-email');
    expect(switched.status, switched.html).toBe(200);
    expect(switched.html).toContain('Email address verified');
    expect(await userJson(user.username, user.id)).toMatchObject({ email: newEmail, email_verified: true, pending_email: null });
    expect(await auditEvents('email.verified', user.id)).toHaveLength(2);
    expect(await auditEvents('email.verification_refused', user.id)).toHaveLength(0);
  });

  it('refuses a link sent to an earlier address once the account has switched to the new one', async () => {
    const user = await register();
    const oldLink = verifyLinkOf(await fx.smtp.next(user.email));
    const newEmail = `new.${user.email}`;
    await changeOwnEmail(user, newEmail);
    const newLink = verifyLinkOf(await fx.smtp.next(newEmail));

    const agent = new UserAgent();
    expect((await submit(agent, newLink, '/account/verify-email')).status).toBe(200);
    expect(await userJson(user.username, user.id)).toMatchObject({ email: newEmail, email_verified: true, pending_email: null });

    const refused = await submit(agent, oldLink, '/account/verify-email');
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('no longer the one on your account');
    expect(await userJson(user.username, user.id)).toMatchObject({ email: newEmail, email_verified: true, pending_email: null });
    expect(await auditEvents('email.verification_refused', user.id)).toHaveLength(1);
  });

  it('refuses a link sent to an earlier address after staff changed it, and mails the new address', async () => {
    const user = await register();
    const oldLink = verifyLinkOf(await fx.smtp.next(user.email));
    const staff = await makeUser(fx.server.latchkey, { isStaff: true });
    const { access } = await apiLogin(staff.username);
    const newEmail = `staff.${user.email}`;
    // Staff set another person's address directly (no proof needed), unverified and not pending.
    const changed = await api('PATCH', `/api/users/${user.id}/`, { token: access, json: { email: newEmail } });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.json).toMatchObject({ email: newEmail, email_verified: false, pending_email: null });
    const newLink = verifyLinkOf(await fx.smtp.next(newEmail));

    const agent = new UserAgent();
    const refused = await submit(agent, oldLink, '/account/verify-email');
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('no longer the one on your account');
    expect((await userJson(user.username, user.id))['email_verified']).toBe(false);
    expect(await auditEvents('email.verification_refused', user.id)).toHaveLength(1);

    expect((await submit(agent, newLink, '/account/verify-email')).status).toBe(200);
    expect(await userJson(user.username, user.id)).toMatchObject({ email: newEmail, email_verified: true, pending_email: null });
  });

  it('answers unknown or malformed verification tokens with the invalid page', async () => {
    for (const token of ['', 'short', 'A'.repeat(43), '<script>']) {
      const page = await get(new UserAgent(), `${fx.server.url}/account/verify-email?token=${encodeURIComponent(token)}`);
      expect(page.status, token).toBe(400);
      expect(page.html).toContain(INVALID_LINK);
      expect(page.html).not.toContain('<script>');
    }
  });

  // ------------------------------------------------------------------ password reset

  it('answers a reset request for an unknown address with the identical page and sends nothing', async () => {
    const user = await makeUser(fx.server.latchkey);
    const unknown = `${unique('nobody')}@example.com`;
    const agent = new UserAgent();
    const forUnknown = await forgot(agent, unknown);
    const forKnown = await forgot(agent, user.email!);
    expect(forUnknown.status).toBe(200);
    expect(forKnown.status).toBe(200);
    expect(forUnknown.html).toBe(forKnown.html);
    expect(forKnown.html).toContain('Check your email');
    expect(forKnown.html).not.toContain(user.email!);
    expect(forUnknown.headers.get('cache-control')).toBe('no-store');

    await fx.server.latchkey.services.background.settled();
    expect(fx.smtp.to(unknown)).toHaveLength(0);
    expect(fx.smtp.to(user.email!)).toHaveLength(1);
    expect((await fx.smtp.next(user.email!)).subject).toBe('Reset your password');
  });

  it('resets the password: the old one stops working, and every session and token from before dies', async () => {
    const user = await makeUser(fx.server.latchkey);
    // Before: an API token pair, and a browser signed in through OpenID Connect with a refresh token.
    const pair = await apiLogin(user.username);
    const browser = new UserAgent();
    const oauth = await loginAndExchange(config, browser, { username: user.username, password: PASSWORD });
    expect(oauth.tokens.refresh_token).toMatch(OPAQUE_TOKEN);
    const silent = async () => {
      const { url } = await authorizationRequest(config, { prompt: 'none' });
      const location = new URL((await browser.fetch(url)).headers.get('location')!, fx.server.url);
      expect(location.href.startsWith(REDIRECT_URI)).toBe(true);
      return location.searchParams;
    };
    expect((await silent()).get('code')).toMatch(OPAQUE_TOKEN);

    // Two requests, two links: using one kills the other.
    const agent = new UserAgent();
    await forgot(agent, user.email!);
    await forgot(agent, user.email!);
    const link = resetLinkOf(await fx.smtp.next(user.email!));
    const otherLink = resetLinkOf(await fx.smtp.next(user.email!));
    expect(link).not.toBe(otherLink);
    const row = await fx.server.latchkey.storage.knex('email_tokens').where({ user_id: user.id, purpose: 'reset_password' }).first();
    expect(Number(row.expires_at) - Number(row.created_at)).toBe(30 * 60 * 1000);

    const page = await get(agent, link);
    expect(page.status).toBe(200);
    expect(page.html).toContain(user.username);
    expect(page.headers.get('cache-control')).toBe('no-store');

    // Refused passwords re-render the form with a message and do not use the link up.
    const mismatch = await submit(agent, link, '/account/password/reset', { password: NEW_PASSWORD, confirm_password: `${NEW_PASSWORD}!` });
    expect(mismatch.status).toBe(400);
    expect(mismatch.html).toContain('The two passwords do not match.');
    expect(hiddenFields(mismatch.html, '/account/password/reset')['token']).toBe(new URL(link).searchParams.get('token'));
    const common = await submit(agent, link, '/account/password/reset', { password: 'password123', confirm_password: 'password123' });
    expect(common.status).toBe(400);
    expect(common.html).toContain('too common');
    const short = await submit(agent, link, '/account/password/reset', { password: 'short', confirm_password: 'short' });
    expect(short.status).toBe(400);
    expect(short.html).toContain('at least 8 characters');

    const done = await submit(agent, link, '/account/password/reset', { password: NEW_PASSWORD, confirm_password: NEW_PASSWORD });
    expect(done.status, done.html).toBe(200);
    expect(done.html).toContain('Password changed');

    expect((await tokenAnswer(user.username, PASSWORD)).status).toBe(401);
    await apiLogin(user.username, NEW_PASSWORD);
    // Everything from before the reset is dead: API refresh token, OAuth tokens, the browser session.
    expect((await api('POST', '/api/token/refresh/', { json: { refresh: pair.refresh } })).status).toBe(401);
    await expect(oidc.refreshTokenGrant(config, oauth.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await api('GET', `${fx.server.issuer}/me`, { token: oauth.tokens.access_token })).status).toBe(401);
    expect((await silent()).get('error')).toBe('login_required');

    // Both links are used up now.
    for (const used of [link, otherLink]) {
      const again = await get(agent, used);
      expect(again.status).toBe(400);
      expect(again.html).toContain(INVALID_LINK);
      expect(again.html).toContain('href="/account/password/forgot"');
    }
    const csrf = formOf((await get(agent, `${fx.server.url}/account/password/forgot`)).html, '/forgot').csrf;
    const replay = await agent.postForm(`${fx.server.url}/account/password/reset`, {
      csrf,
      token: new URL(link).searchParams.get('token')!,
      password: 'an attacker passphrase here',
      confirm_password: 'an attacker passphrase here',
    });
    expect(replay.status).toBe(400);
    await apiLogin(user.username, NEW_PASSWORD);
    expect(await auditEvents('user.password_reset', user.id)).toHaveLength(1);
  });

  it('lets exactly one of two parallel uses of a reset link through', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = new UserAgent();
    await forgot(agent, user.email!);
    const link = resetLinkOf(await fx.smtp.next(user.email!));
    const page = await get(agent, link);
    const { csrf } = formOf(page.html, '/account/password/reset');
    const token = new URL(link).searchParams.get('token')!;
    const attempt = (password: string) => agent.postForm(`${fx.server.url}/account/password/reset`, { csrf, token, password, confirm_password: password });
    const results = await Promise.all([attempt('first parallel passphrase'), attempt('second parallel passphrase')]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 400]);
    const winner = results[0]!.status === 200 ? 'first parallel passphrase' : 'second parallel passphrase';
    await apiLogin(user.username, winner);
  });

  it('refuses an expired reset link and leaves the password alone', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = new UserAgent();
    await forgot(agent, user.email!);
    const link = resetLinkOf(await fx.smtp.next(user.email!));
    const form = formOf((await get(agent, link)).html, '/account/password/reset');
    await fx.server.latchkey.storage.knex('email_tokens').where({ user_id: user.id }).update({ expires_at: Date.now() - 1 });

    const page = await get(agent, link);
    expect(page.status).toBe(400);
    expect(page.html).toContain(INVALID_LINK);
    const posted = await agent.postForm(`${fx.server.url}/account/password/reset`, {
      csrf: form.csrf,
      token: new URL(link).searchParams.get('token')!,
      password: NEW_PASSWORD,
      confirm_password: NEW_PASSWORD,
    });
    expect(posted.status).toBe(400);
    expect(await posted.text()).toContain(INVALID_LINK);
    await apiLogin(user.username, PASSWORD);
  });

  it('refuses a reset link after the account moved to another address', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = new UserAgent();
    await forgot(agent, user.email!);
    const link = resetLinkOf(await fx.smtp.next(user.email!));
    await fx.server.latchkey.storage.users.update(user.id, { email: `moved.${user.email}` });
    expect((await get(agent, link)).status).toBe(400);
    await apiLogin(user.username, PASSWORD);
  });

  it('sends no reset mail to an inactive user, with the same answer', async () => {
    const user = await makeUser(fx.server.latchkey, { isActive: false });
    const answer = await forgot(new UserAgent(), user.email!);
    expect(answer.status).toBe(200);
    expect(answer.html).toContain('Check your email');
    await fx.server.latchkey.services.background.settled();
    expect(fx.smtp.to(user.email!)).toHaveLength(0);
    expect(await auditEvents('password_reset.requested', user.id)).toEqual([{ details: JSON.stringify({ mail_sent: false, reason: 'inactive' }) }]);
  });

  it('refuses a reset request without the right CSRF token, and re-renders invalid addresses', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = new UserAgent();
    await get(agent, `${fx.server.url}/account/password/forgot`);
    const forged = await agent.postForm(`${fx.server.url}/account/password/forgot`, { csrf: 'x'.repeat(43), email: user.email! });
    expect(forged.status).toBe(403);
    const html = await forged.text();
    expect(html).toContain('This form has expired');
    expect(html).toContain(`value="${user.email}"`);
    const bad = await forgot(agent, 'not an address');
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('Enter a valid email address.');
    await fx.server.latchkey.services.background.settled();
    expect(fx.smtp.to(user.email!)).toHaveLength(0);
  });

  it('limits reset requests per address and per IP, the same way for unknown addresses', async () => {
    const user = await makeUser(fx.server.latchkey);
    const unknown = `${unique('ghost')}@example.com`;
    const agent = new UserAgent();
    const answers: Record<string, Array<{ status: number; html: string; headers: Headers }>> = { known: [], unknown: [] };
    for (let i = 0; i < 4; i++) {
      answers['known']!.push(await forgot(agent, user.email!));
      answers['unknown']!.push(await forgot(agent, unknown));
    }
    for (const list of Object.values(answers)) expect(list.map((a) => a.status)).toEqual([200, 200, 200, 429]);
    const [known, ghost] = [answers['known']![3]!, answers['unknown']![3]!];
    expect(Number(known.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(known.headers.get('retry-after')).toBe(ghost.headers.get('retry-after'));
    expect(known.html).toContain('Too many requests');
    expect(known.html.replace(user.email!, 'ADDRESS')).toBe(ghost.html.replace(unknown, 'ADDRESS'));
    await fx.server.latchkey.services.background.settled();
    expect(fx.smtp.to(user.email!)).toHaveLength(3);

    // Per IP: 20 requests for 20 addresses, then the 21st is refused whatever the address.
    const ip = freshIp();
    for (let i = 0; i < 20; i++) expect((await forgot(agent, `${unique('many')}@example.com`, ip)).status).toBe(200);
    const refused = await forgot(agent, `${unique('many')}@example.com`, ip);
    expect(refused.status).toBe(429);
    expect((await forgot(agent, `${unique('many')}@example.com`)).status).toBe(200);
  });

  it('keeps the interaction uid so the person can go back to signing in', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = new UserAgent();
    const { url } = await authorizationRequest(config);
    const { response, url: loginUrl } = await agent.follow(url);
    const uid = loginUrl.pathname.split('/').pop()!;
    const login = await response.text();
    expect(login).toContain(`href="/account/password/forgot?uid=${uid}"`);

    const forgotUrl = `${fx.server.url}/account/password/forgot?uid=${uid}`;
    expect((await get(agent, forgotUrl)).html).toContain(`href="/interaction/${uid}"`);
    const sent = await submit(agent, forgotUrl, '/account/password/forgot', { email: user.email! }, freshIp());
    expect(sent.html).toContain(`href="/interaction/${uid}"`);
    const link = resetLinkOf(await fx.smtp.next(user.email!));
    expect(new URL(link).searchParams.get('uid')).toBe(uid);
    const done = await submit(agent, link, '/account/password/reset', { password: NEW_PASSWORD, confirm_password: NEW_PASSWORD });
    expect(done.html).toContain(`href="/interaction/${uid}"`);
    // A uid that is not one is dropped, never echoed into a link.
    const odd = await get(agent, `${fx.server.url}/account/password/forgot?uid=${encodeURIComponent('"><script>')}`);
    expect(odd.html).not.toContain('/interaction/');
    expect(odd.html).not.toContain('<script>');
  });
}, { smtp: true });

describe.each(BACKENDS)('mail without SMTP_URL: the outbox (%s)', (backend) => {
  it('writes each mail as an .eml file, logs where, and never logs a token', async () => {
    const db = await freshDatabase(backend);
    const outbox = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-outbox-'));
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const running = await startLatchkey(testEnv(db.url, { MAIL_OUTBOX_DIR: outbox }), { logger: pino({ level: 'info' }, sink) });
    try {
      const username = unique('outbox');
      const email = `${username}@example.com`;
      const created = await fetch(`${running.url}/api/users/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, email, password: PASSWORD }),
      });
      expect(created.status).toBe(201);
      await running.latchkey.services.background.settled();

      const files = fs.readdirSync(outbox).filter((f) => f.endsWith('.eml'));
      expect(files).toHaveLength(1);
      const file = path.join(outbox, files[0]!);
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      const raw = fs.readFileSync(file, 'utf8');
      expect(raw).toContain(`To: ${email}`);
      expect(raw).toContain('Subject: Confirm your email address');
      expect(lines.some((l) => l['file'] === file && String(l['msg']).includes('outbox'))).toBe(true);

      // The link in the file works like one that came by SMTP, and the request log has no token.
      const link = linkIn(parseMail(raw).text, `${running.url}/account/verify-email?token=`);
      const token = new URL(link).searchParams.get('token');
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const agent = new UserAgent();
      const page = await agent.fetch(link);
      expect(page.status).toBe(200);
      const form = formOf(await page.text(), '/account/verify-email');
      expect((await agent.postForm(`${running.url}/account/verify-email`, { csrf: form.csrf, token: token! })).status).toBe(200);
      const requests = lines.filter((l) => l['msg'] === 'request' && String(l['path']).startsWith('/account/'));
      expect(requests.length).toBeGreaterThanOrEqual(2);
      expect(JSON.stringify(lines)).not.toContain(token);
    } finally {
      await running.close(1000);
      await db.drop();
      fs.rmSync(outbox, { recursive: true, force: true });
    }
  });
});

describe('a mail server that does not answer', () => {
  it('slows neither a reset request nor a registration: mail goes out after the answer', async () => {
    // Accepts connections and never sends the SMTP greeting; nodemailer would wait 10 s.
    const sockets: net.Socket[] = [];
    const stalled = net.createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', () => resolve()));
    const port = (stalled.address() as net.AddressInfo).port;
    const server = await startTestServer('sqlite', { SMTP_URL: `smtp://127.0.0.1:${port}` });
    try {
      const user = await makeUser(server.latchkey);
      const agent = new UserAgent();
      const { csrf } = formOf(await (await agent.fetch(`${server.url}/account/password/forgot`)).text(), '/forgot');
      let started = performance.now();
      const reset = await agent.postForm(`${server.url}/account/password/forgot`, { csrf, email: user.email! });
      expect(reset.status).toBe(200);
      expect(performance.now() - started).toBeLessThan(2000);
      await expect.poll(() => sockets.length).toBe(1);

      started = performance.now();
      const username = unique('slowmail');
      const registered = await fetch(`${server.url}/api/users/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username, email: `${username}@example.com`, password: PASSWORD }),
      });
      expect(registered.status).toBe(201);
      expect(performance.now() - started).toBeLessThan(2000);
      await expect.poll(() => sockets.length).toBe(2);
    } finally {
      // Hanging up fails both sends at once (logged), so shutdown need not wait for timeouts.
      for (const socket of sockets) socket.destroy();
      await server.stop();
      await new Promise<void>((resolve) => stalled.close(() => resolve()));
    }
  });
});
