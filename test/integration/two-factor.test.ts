/**
 * Two-factor authentication (TOTP and recovery codes) over real HTTP on each backend:
 * enrollment through the REST API with codes computed here by the library, the second login
 * step and the ID token's amr/acr through openid-client, and every way around it that must
 * stay shut: wrong, replayed and used-up codes, guessing (lockout), the password-only doors
 * (/api/token/, /users/login/, the password grant), the admin login, a stolen interaction.
 */
import { createHash } from 'node:crypto';
import * as oidc from 'openid-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { MFA_ACR, PASSWORD_ACR } from '../../src/oidc/acr.js';
import { adminLogin } from '../helpers/admin.js';
import { formOf, UserAgent } from '../helpers/browserless.js';
import { readAnswer } from '../helpers/http.js';
import { authorizationRequest, discover, makeClient, makeUser, PASSWORD, REDIRECT_URI } from '../helpers/rp.js';
import { apiAccess, callJson, codeAt, enrollOverRest, wrongCode } from '../helpers/two-factor.js';
import { describeOnBackends } from '../helpers/fixture.js';

/** Wrong codes (or passwords) per account before a lockout, for this suite. */
const LOCKOUT_AFTER = 4;

const h1Of = (html: string) => /<h1>([^<]*)<\/h1>/.exec(html)?.[1];
const alertOf = (html: string) => /<p class="alert" role="alert">([^<]*)<\/p>/.exec(html)?.[1];
const isCallback = (u: URL) => u.href.startsWith(REDIRECT_URI);

describeOnBackends('two-factor authentication (%s)', { LOGIN_MAX_FAILURES_PER_ACCOUNT: String(LOCKOUT_AFTER) }, (fx) => {
  let config: oidc.Configuration;
  const base = () => fx.server.url;

  beforeAll(async () => {
    const made = await makeClient(fx.server.latchkey, { name: 'MFA App' });
    config = await discover(fx.server.issuer, made.client.clientId, made.clientSecret);
  });

  const auditEvents = async (event: string) => (await fx.server.latchkey.services.audit.list({ offset: 0, limit: 100, event })).events;

  /** A new user with two-factor on. */
  async function enrolledUser(overrides: Parameters<typeof makeUser>[1] = {}) {
    const user = await makeUser(fx.server.latchkey, overrides);
    return { user, ...(await enrollOverRest(base(), user.username)) };
  }

  /** Opens the login page of a fresh authorization request in `agent`. */
  async function openLogin(agent: UserAgent, params: Record<string, string> = {}) {
    const request = await authorizationRequest(config, params);
    const { response, url } = await agent.follow(request.url, isCallback);
    const html = await response.text();
    expect(response.status, html).toBe(200);
    expect(html).toContain('name="password"');
    return { request, url, form: formOf(html, '/login') };
  }

  /** Password step; returns the page it leads to (the code page for a two-factor account). */
  async function passwordStep(agent: UserAgent, params: Record<string, string> = {}, username: string, password = PASSWORD) {
    const login = await openLogin(agent, params);
    const posted = await agent.postForm(new URL(login.form.action, login.url), { csrf: login.form.csrf, username, password });
    expect(posted.status, await posted.clone().text()).toBe(303);
    const { response, url } = await agent.follow(new URL(posted.headers.get('location')!, login.url), isCallback);
    return { ...login, response, at: url, html: isCallback(url) ? '' : await response.text() };
  }

  /** Posts a code on the second-step page. */
  async function submitCode(agent: UserAgent, page: { html: string; at: URL }, code: string) {
    const form = formOf(page.html, '/two-factor');
    return agent.postForm(new URL(form.action, page.at), { csrf: form.csrf, code });
  }

  /** From a redirect after the last login step, through consent, to tokens from openid-client. */
  async function consentAndExchange(agent: UserAgent, redirect: Response, from: URL, request: Awaited<ReturnType<typeof authorizationRequest>>) {
    expect(redirect.status, await redirect.clone().text()).toBe(303);
    let { response, url } = await agent.follow(new URL(redirect.headers.get('location')!, from), isCallback);
    if (!isCallback(url)) {
      const form = formOf(await response.text(), '/confirm');
      const allowed = await agent.postForm(new URL(form.action, url), { csrf: form.csrf, decision: 'allow' });
      ({ url } = await agent.follow(new URL(allowed.headers.get('location')!, url), isCallback));
    }
    expect(isCallback(url), url.href).toBe(true);
    return oidc.authorizationCodeGrant(config, url, {
      pkceCodeVerifier: request.codeVerifier,
      expectedState: request.state,
      expectedNonce: request.nonce,
      idTokenExpected: true,
    });
  }

  /** A whole login with password and code; the ID token's claims. */
  async function loginWithCode(username: string, code: string, params: Record<string, string> = {}) {
    const agent = new UserAgent();
    const step = await passwordStep(agent, params, username);
    expect(h1Of(step.html)).toBe('Two-step verification');
    const tokens = await consentAndExchange(agent, await submitCode(agent, step, code), step.at, step.request);
    return tokens.claims()!;
  }

  describe('enrollment over REST', () => {
    it('enrolls with a QR code, enables on a valid code only, and returns ten recovery codes once', async () => {
      const user = await makeUser(fx.server.latchkey);
      const access = await apiAccess(base(), user.username);
      const status = async () => (await callJson(base(), 'GET', '/api/me/two-factor/', undefined, access)).json;
      expect(await status()).toEqual({ enabled: false, enabled_at: null, pending: false, recovery_codes_remaining: 0 });

      // The current password first: a token alone must not put its own authenticator on the account.
      for (const body of [undefined, { password: 'not the password' }]) {
        const refused = await callJson(base(), 'POST', '/api/me/two-factor/enroll/', body, access);
        expect(refused.status, refused.text).toBe(400);
        expect(Object.keys(refused.json['fields'] as object)).toEqual(['password']);
      }
      expect(await status()).toMatchObject({ pending: false });
      const enrolled = await callJson(base(), 'POST', '/api/me/two-factor/enroll/', { password: PASSWORD }, access);
      expect(enrolled.status).toBe(200);
      expect(enrolled.headers.get('cache-control')).toBe('no-store');
      const secret = String(enrolled.json['secret']);
      expect(secret).toMatch(/^[A-Z2-7]{32}$/);
      const uri = new URL(String(enrolled.json['otpauth_uri']));
      expect(uri.protocol).toBe('otpauth:');
      expect(uri.host).toBe('totp');
      expect(decodeURIComponent(uri.pathname)).toBe(`/Latchkey:${user.username}`);
      expect(uri.searchParams.get('issuer')).toBe('Latchkey');
      expect(uri.searchParams.get('secret')).toBe(secret);
      expect(String(enrolled.json['qr_svg'])).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"[\s\S]*<\/svg>\s*$/);
      expect(await status()).toMatchObject({ enabled: false, pending: true });
      // Nothing changes for sign-in before the code confirms it.
      expect((await callJson(base(), 'POST', '/api/token/', { username: user.username, password: PASSWORD })).status).toBe(200);

      const wrong = await callJson(base(), 'POST', '/api/me/two-factor/confirm/', { code: wrongCode(secret) }, access);
      expect(wrong.status).toBe(400);
      expect(wrong.json).toMatchObject({ error: 'invalid_request', fields: { code: [expect.any(String)] } });
      const missing = await callJson(base(), 'POST', '/api/me/two-factor/confirm/', {}, access);
      expect(missing.status).toBe(400);
      expect(await status()).toMatchObject({ enabled: false, pending: true });

      const confirmed = await callJson(base(), 'POST', '/api/me/two-factor/confirm/', { code: codeAt(secret) }, access);
      expect(confirmed.status, confirmed.text).toBe(200);
      const codes = confirmed.json['recovery_codes'] as string[];
      expect(codes).toHaveLength(10);
      expect(new Set(codes).size).toBe(10);
      for (const code of codes) expect(code).toMatch(/^[a-z2-9]{5}(-[a-z2-9]{5}){3}$/);
      expect(await status()).toMatchObject({ enabled: true, pending: false, recovery_codes_remaining: 10, enabled_at: expect.any(String) });

      // Enabled: no second enrollment or confirmation, and the codes are never shown again.
      expect((await callJson(base(), 'POST', '/api/me/two-factor/enroll/', { password: PASSWORD }, access)).status).toBe(409);
      expect((await callJson(base(), 'POST', '/api/me/two-factor/confirm/', { code: codeAt(secret, 1) }, access)).status).toBe(409);
      expect(JSON.stringify(await status())).not.toContain(codes[0]!.slice(0, 5));

      // At rest: neither the secret nor a recovery code in the clear.
      const row = (await fx.server.latchkey.storage.knex('two_factor').where({ user_id: user.id }).first()) as Record<string, unknown>;
      expect(JSON.stringify(row)).not.toContain(secret);
      const stored = (await fx.server.latchkey.storage.knex('two_factor_recovery_codes').where({ user_id: user.id }).pluck('code_hash')) as string[];
      const sha256 = (code: string) => createHash('sha256').update(code.replace(/-/g, '')).digest('hex');
      expect(stored.sort()).toEqual(codes.map(sha256).sort());
      expect((await auditEvents('two_factor.enabled')).some((e) => e.target_id === String(user.id))).toBe(true);
    });

    it('refuses anonymous callers and 404s nothing: every route needs a user token', async () => {
      for (const [method, path] of [
        ['GET', '/api/me/two-factor/'],
        ['POST', '/api/me/two-factor/enroll/'],
        ['POST', '/api/me/two-factor/confirm/'],
        ['POST', '/api/me/two-factor/recovery-codes/'],
        ['DELETE', '/api/me/two-factor/'],
      ] as const) {
        const answer = await callJson(base(), method, path, method === 'GET' ? undefined : {});
        expect(answer.status, `${method} ${path}`).toBe(401);
        expect(answer.json['error']).toBe('invalid_token');
      }
    });

    it('regenerates recovery codes for the password and a valid code only; the old ones stop working', async () => {
      const { user, secret, recoveryCodes, access } = await enrolledUser();
      const wrong = await callJson(base(), 'POST', '/api/me/two-factor/recovery-codes/', { password: PASSWORD, code: wrongCode(secret) }, access);
      expect(wrong.status).toBe(400);
      const noPassword = await callJson(base(), 'POST', '/api/me/two-factor/recovery-codes/', { code: codeAt(secret, 1) }, access);
      expect(noPassword.status).toBe(400);
      expect(Object.keys(noPassword.json['fields'] as object)).toEqual(['password']);
      const renewed = await callJson(base(), 'POST', '/api/me/two-factor/recovery-codes/', { password: PASSWORD, code: codeAt(secret, 1) }, access);
      expect(renewed.status, renewed.text).toBe(200);
      const fresh = renewed.json['recovery_codes'] as string[];
      expect(fresh).toHaveLength(10);
      expect(fresh.filter((c) => recoveryCodes.includes(c))).toEqual([]);
      const old = await callJson(base(), 'POST', '/api/token/', { username: user.username, password: PASSWORD, otp: recoveryCodes[0] });
      expect(old.status).toBe(401);
      expect(old.json['error']).toBe('invalid_otp');
      const good = await callJson(base(), 'POST', '/api/token/', { username: user.username, password: PASSWORD, otp: fresh[0] });
      expect(good.status).toBe(200);
    });
  });

  describe('the second login step', () => {
    it('asks for the code after the password; only the code finishes the login, with amr pwd+otp and the mfa acr', async () => {
      const { user, secret } = await enrolledUser();
      const lastLogin = (await fx.server.latchkey.storage.users.findById(user.id))?.lastLogin;
      const agent = new UserAgent();
      const step = await passwordStep(agent, {}, user.username);
      expect(step.response.status).toBe(200);
      expect(new URL(step.at).pathname).toMatch(/^\/interaction\/[^/]+$/);
      expect(h1Of(step.html)).toBe('Two-step verification');
      expect(step.html).toContain('to continue to <strong>MFA App</strong>');
      expect(step.html).toContain('autocomplete="one-time-code"');
      expect(step.html).not.toContain('name="password"');
      // The password step alone is not a login.
      expect((await auditEvents('login.password_verified')).some((e) => e.actor_user_id === user.id)).toBe(true);
      expect((await fx.server.latchkey.storage.users.findById(user.id))?.lastLogin).toBe(lastLogin);

      const wrong = await submitCode(agent, step, wrongCode(secret));
      const wrongHtml = await wrong.text();
      expect(wrong.status).toBe(401);
      expect(h1Of(wrongHtml)).toBe('Two-step verification');
      expect(alertOf(wrongHtml)).toBe('That code is not valid. Enter the current code from your app, or an unused recovery code.');

      const tokens = await consentAndExchange(agent, await submitCode(agent, { ...step, html: wrongHtml }, codeAt(secret, 1)), step.at, step.request);
      const claims = tokens.claims()!;
      expect(claims.sub).toBe(String(user.id));
      expect(claims.amr).toEqual(['pwd', 'otp']);
      expect(claims.acr).toBe(MFA_ACR);
      expect((await fx.server.latchkey.storage.users.findById(user.id))?.lastLogin).toBeGreaterThan(lastLogin!);
      const success = (await auditEvents('login.success')).find((e) => e.actor_user_id === user.id);
      expect(success?.details).toMatchObject({ via: 'login_page', second_factor: 'totp' });
      // The session remembers it: a refresh keeps saying how the person signed in.
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      expect(refreshed.claims()?.amr).toEqual(['pwd', 'otp']);
      expect(refreshed.claims()?.acr).toBe(MFA_ACR);
    });

    it('refuses a replayed code, also the one that confirmed the enrollment', async () => {
      const { user, secret, confirmCode } = await enrolledUser();
      const first = new UserAgent();
      const step = await passwordStep(first, {}, user.username);
      expect((await submitCode(first, step, confirmCode)).status).toBe(401);

      const code = codeAt(secret, 1);
      expect((await loginWithCode(user.username, code)).amr).toEqual(['pwd', 'otp']);
      const again = new UserAgent();
      const second = await passwordStep(again, {}, user.username);
      const replayed = await submitCode(again, second, code);
      expect(replayed.status).toBe(401);
      expect(alertOf(await replayed.text())).toMatch(/^That code is not valid/);
    });

    it('accepts a code once when it arrives several times at once', async () => {
      // Three browsers at the code page (fewer than the lockout, so every loser is a plain
      // refusal) send the same code together: one conditional UPDATE decides.
      for (const kind of ['totp', 'recovery code']) {
        const { user, secret, recoveryCodes } = await enrolledUser();
        const code = kind === 'totp' ? codeAt(secret, 1) : recoveryCodes[5]!;
        const agents = [new UserAgent(), new UserAgent(), new UserAgent()];
        const steps: Array<Awaited<ReturnType<typeof passwordStep>>> = [];
        for (const agent of agents) steps.push(await passwordStep(agent, {}, user.username));
        const answers = await Promise.all(agents.map((agent, i) => submitCode(agent, steps[i]!, code)));
        expect(answers.map((a) => a.status).sort(), kind).toEqual([303, 401, 401]);
      }
    });

    it('accepts a code from one step back or ahead, not from further', async () => {
      const { user, secret } = await enrolledUser();
      for (const steps of [-3, 3, 10]) {
        const agent = new UserAgent();
        const step = await passwordStep(agent, {}, user.username);
        expect((await submitCode(agent, step, codeAt(secret, steps))).status, `${steps} steps`).toBe(401);
      }
      expect((await loginWithCode(user.username, codeAt(secret, 1))).acr).toBe(MFA_ACR);
    });

    it('accepts each recovery code once, in any case and with or without dashes', async () => {
      const { user, recoveryCodes, access } = await enrolledUser();
      const code = recoveryCodes[3]!;
      const claims = await loginWithCode(user.username, code.toUpperCase().replace(/-/g, ' '));
      expect(claims.amr).toEqual(['pwd', 'otp']);
      expect(claims.acr).toBe(MFA_ACR);
      const used = (await auditEvents('two_factor.recovery_code_used')).find((e) => e.actor_user_id === user.id);
      expect(used?.details).toMatchObject({ via: 'login_page', remaining: 9 });
      expect(JSON.stringify(used)).not.toContain(code);

      const agent = new UserAgent();
      const step = await passwordStep(agent, {}, user.username);
      expect((await submitCode(agent, step, code)).status).toBe(401);
      const status = await callJson(base(), 'GET', '/api/me/two-factor/', undefined, access);
      expect(status.json['recovery_codes_remaining']).toBe(9);
    });

    it(`locks the code step after ${LOCKOUT_AFTER} wrong codes, even for the right one, and says so`, async () => {
      const { user, secret } = await enrolledUser();
      const agent = new UserAgent();
      const step = await passwordStep(agent, {}, user.username);
      for (let i = 1; i < LOCKOUT_AFTER; i++) expect((await submitCode(agent, step, wrongCode(secret))).status).toBe(401);
      const last = await submitCode(agent, step, wrongCode(secret));
      expect([401, 429]).toContain(last.status);
      const locked = await submitCode(agent, step, codeAt(secret, 1));
      const html = await locked.text();
      expect(locked.status).toBe(429);
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(alertOf(html)).toMatch(/^Too many failed sign-in attempts\. Try again in \d+ minutes?\.$/);
      expect(h1Of(html)).toBe('Two-step verification');
      expect((await auditEvents('two_factor.lockout')).some((e) => e.actor_user_id === user.id)).toBe(true);

      // Another browser, another door: the account's codes stay locked everywhere.
      const other = new UserAgent();
      const otherStep = await passwordStep(other, {}, user.username);
      expect((await submitCode(other, otherStep, codeAt(secret, 1))).status).toBe(429);
      const api = await callJson(base(), 'POST', '/api/token/', { username: user.username, password: PASSWORD, otp: codeAt(secret, 1) });
      expect(api.status).toBe(429);
      expect(api.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    });

    it('keeps the second step bound to its browser, its form and its interaction', async () => {
      const { user, secret } = await enrolledUser();
      const agent = new UserAgent();
      const step = await passwordStep(agent, {}, user.username);
      const form = formOf(step.html, '/two-factor');

      const forged = await agent.postForm(new URL(form.action, step.at), { csrf: 'forged', code: codeAt(secret, 1) });
      expect(forged.status).toBe(403);
      expect(alertOf(await forged.text())).toBe('This form has expired. Please try again.');

      // Another browser (without the interaction cookie) cannot finish it, even with a good code.
      const stranger = new UserAgent();
      const stolen = await stranger.postForm(new URL(form.action, step.at), { csrf: form.csrf, code: codeAt(secret, 1) });
      expect(stolen.status).toBe(400);
      expect(h1Of(await stolen.text())).toBe('Sign-in expired');

      // Resuming the authorization without the code starts the login over: no code, no session.
      const interaction = await fx.server.latchkey.host.provider.Interaction.find(new URL(step.at).pathname.split('/').pop()!);
      const { response, url } = await agent.follow(new URL(interaction!.returnTo), isCallback);
      expect(isCallback(url)).toBe(false);
      expect(h1Of(await response.text())).toBe('Sign in');
    });

    it('speaks French on the code page when the application asks for it', async () => {
      const { user, secret } = await enrolledUser();
      const agent = new UserAgent();
      const step = await passwordStep(agent, { ui_locales: 'fr' }, user.username);
      expect(step.html).toContain('<html lang="fr">');
      expect(h1Of(step.html)).toBe('Validation en deux étapes');
      expect(step.html).toContain('pour continuer vers <strong>MFA App</strong>');
      const wrong = await submitCode(agent, step, wrongCode(secret));
      expect(alertOf(await wrong.text())).toMatch(/^Ce code n’est pas valide\./);
    });

    it('signs in to /admin/ (the same login page) only after the code', async () => {
      const { user, secret } = await enrolledUser({ isStaff: true });
      const agent = new UserAgent();
      const afterPassword = await adminLogin(base(), agent, user.username, PASSWORD);
      expect(h1Of(afterPassword.html)).toBe('Two-step verification');
      expect((await agent.fetch(`${base()}/admin/users`)).status).not.toBe(200);
      const form = formOf(afterPassword.html, '/two-factor');
      const posted = await agent.postForm(new URL(form.action, afterPassword.url), { csrf: form.csrf, code: codeAt(secret, 1) });
      expect(posted.status).toBe(303);
      const { response } = await agent.follow(new URL(posted.headers.get('location')!, afterPassword.url));
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('Administration');
    });
  });

  describe('acr', () => {
    const essential = (values: string[]) => ({ claims: JSON.stringify({ id_token: { acr: { essential: true, values } } }) });

    it('advertises the mfa acr in discovery', () => {
      expect(config.serverMetadata().acr_values_supported).toEqual([PASSWORD_ACR, MFA_ACR]);
    });

    it('refuses an essential mfa acr for a user without two-factor, after the password', async () => {
      const user = await makeUser(fx.server.latchkey);
      const agent = new UserAgent();
      const step = await passwordStep(agent, essential([MFA_ACR]), user.username);
      expect(isCallback(step.at), step.html).toBe(true);
      expect(step.at.searchParams.get('error')).toBe('unmet_authentication_requirements');
      expect(step.at.searchParams.get('state')).toBe(step.request.state);
      expect(step.at.searchParams.get('code')).toBeNull();
    });

    it('meets an essential mfa acr with two-factor, and gives the password acr to a request that accepts only that', async () => {
      const { user, secret, recoveryCodes } = await enrolledUser();
      const mfa = await loginWithCode(user.username, codeAt(secret, 1), essential([MFA_ACR]));
      expect(mfa.acr).toBe(MFA_ACR);
      const passwordOnly = await loginWithCode(user.username, recoveryCodes[0]!, essential([PASSWORD_ACR]));
      expect(passwordOnly.acr).toBe(PASSWORD_ACR);
      expect(passwordOnly.amr).toEqual(['pwd', 'otp']);
    });

    it('keeps the password acr and amr for accounts without two-factor', async () => {
      const user = await makeUser(fx.server.latchkey);
      const agent = new UserAgent();
      const step = await passwordStep(agent, {}, user.username);
      expect(step.html).not.toContain('/two-factor"');
      expect(h1Of(step.html)).toBe('Allow access?');
    });
  });

  describe('password-only doors', () => {
    it('/api/token/ needs the otp of a two-factor account: mfa_required, invalid_otp, then tokens', async () => {
      const { user, secret } = await enrolledUser();
      const missing = await callJson(base(), 'POST', '/api/token/', { username: user.username, password: PASSWORD });
      expect(missing.status).toBe(401);
      expect(missing.json).toMatchObject({ error: 'mfa_required', error_description: expect.stringContaining('otp') });
      expect(missing.json['access']).toBeUndefined();
      const wrong = await callJson(base(), 'POST', '/api/token/', { username: user.username, password: PASSWORD, otp: wrongCode(secret) });
      expect(wrong.status).toBe(401);
      expect(wrong.json['error']).toBe('invalid_otp');
      // A wrong password with a good code: the generic answer, and the code is not used up.
      const code = codeAt(secret, 1);
      const badPassword = await callJson(base(), 'POST', '/api/token/', { username: user.username, password: 'not the passphrase', otp: code });
      expect(badPassword.status).toBe(401);
      expect(badPassword.json['error']).toBe('invalid_credentials');
      const good = await callJson(base(), 'POST', '/api/token/', { username: user.username, password: PASSWORD, otp: code });
      expect(good.status, good.text).toBe(200);
      expect(good.json['access']).toEqual(expect.any(String));
      const replayed = await callJson(base(), 'POST', '/api/token/', { username: user.username, password: PASSWORD, otp: code });
      expect(replayed.json['error']).toBe('invalid_otp');
    });

    it('/users/login/ needs the otp too', async () => {
      const { user, recoveryCodes } = await enrolledUser();
      const post = async (fields: Record<string, string>) =>
        readAnswer(
          await fetch(`${base()}/users/login/`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams(fields).toString(),
          }),
        );
      const missing = await post({ username: user.username, password: PASSWORD });
      expect(missing.status).toBe(401);
      expect(missing.json['error']).toBe('mfa_required');
      const good = await post({ username: user.username, password: PASSWORD, otp: recoveryCodes[1]! });
      expect(good.status, good.text).toBe(200);
      expect(good.json['access_token']).toEqual(expect.any(String));
    });

    it('the password grant needs the otp too (invalid_grant without it)', async () => {
      const { user, secret } = await enrolledUser();
      const made = await makeClient(fx.server.latchkey, { grantTypes: ['password', 'refresh_token'], redirectUris: [] });
      const legacy = await discover(fx.server.issuer, made.client.clientId, made.clientSecret);
      await expect(oidc.genericGrantRequest(legacy, 'password', { username: user.username, password: PASSWORD })).rejects.toMatchObject({
        error: 'invalid_grant',
        error_description: expect.stringContaining('two-factor authentication required'),
      });
      await expect(
        oidc.genericGrantRequest(legacy, 'password', { username: user.username, password: PASSWORD, otp: wrongCode(secret) }),
      ).rejects.toMatchObject({ error: 'invalid_grant', error_description: 'invalid otp' });
      const tokens = await oidc.genericGrantRequest(legacy, 'password', { username: user.username, password: PASSWORD, otp: codeAt(secret, 1) });
      expect(tokens.access_token).toEqual(expect.any(String));
    });
  });

  describe('turning it off', () => {
    it('disables with the current password and a code, each of which must be right', async () => {
      const { user, secret, access } = await enrolledUser();
      const del = (body: unknown) => callJson(base(), 'DELETE', '/api/me/two-factor/', body, access);

      const missing = await del({ password: PASSWORD });
      expect(missing.status).toBe(400);
      expect(missing.json['fields']).toEqual({ code: ['This field is required.'] });
      const badPassword = await del({ password: 'not the passphrase', code: codeAt(secret, 1) });
      expect(badPassword.status).toBe(400);
      expect(Object.keys(badPassword.json['fields'] as object)).toEqual(['password']);
      const badCode = await del({ password: PASSWORD, code: wrongCode(secret) });
      expect(badCode.status).toBe(400);
      expect(Object.keys(badCode.json['fields'] as object)).toEqual(['code']);
      expect((await callJson(base(), 'GET', '/api/me/two-factor/', undefined, access)).json['enabled']).toBe(true);

      // A form body works as well as JSON.
      const off = await fetch(`${base()}/api/me/two-factor/`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${access}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ password: PASSWORD, code: codeAt(secret, 1) }).toString(),
      });
      expect(off.status).toBe(204);
      expect((await callJson(base(), 'GET', '/api/me/two-factor/', undefined, access)).json).toMatchObject({ enabled: false, pending: false });
      expect(Number(((await fx.server.latchkey.storage.knex('two_factor_recovery_codes').where({ user_id: user.id }).count({ n: '*' }).first()) as { n: unknown }).n)).toBe(0);
      expect((await auditEvents('two_factor.disabled')).some((e) => e.target_id === String(user.id))).toBe(true);
      expect((await callJson(base(), 'POST', '/api/token/', { username: user.username, password: PASSWORD })).status).toBe(200);
      expect((await del({ password: PASSWORD, code: codeAt(secret, 1) })).status).toBe(409);
    });

    it('lets staff reset it on the admin user page (CSRF-protected, audited); a non-superuser cannot for a superuser', async () => {
      const { user } = await enrolledUser();
      const staff = await makeUser(fx.server.latchkey, { isStaff: true });
      const agent = new UserAgent();
      expect((await adminLogin(base(), agent, staff.username, PASSWORD)).response.status).toBe(200);

      const edit = await (await agent.fetch(`${base()}/admin/users/${user.id}`)).text();
      expect(edit).toMatch(/<dt>Two-factor<\/dt><dd>On<\/dd>/);
      expect(edit).toContain(`href="/admin/users/${user.id}/two-factor"`);
      const confirm = await (await agent.fetch(`${base()}/admin/users/${user.id}/two-factor`)).text();
      expect(confirm).toContain('Yes, reset two-factor');
      const form = formOf(confirm, '/two-factor');

      const forged = await agent.postForm(new URL(form.action, base()), { csrf: 'forged' });
      expect(forged.status).toBe(403);
      expect((await callJson(base(), 'POST', '/api/token/', { username: user.username, password: PASSWORD })).json['error']).toBe('mfa_required');

      const reset = await agent.postForm(new URL(form.action, base()), { csrf: form.csrf });
      expect(reset.status).toBe(303);
      expect(reset.headers.get('location')).toBe(`/admin/users/${user.id}?done=two-factor-reset`);
      const after = await (await agent.fetch(new URL(reset.headers.get('location')!, base()))).text();
      expect(after).toContain('Two-factor authentication was turned off for this user');
      expect(after).toMatch(/<dt>Two-factor<\/dt><dd>Off<\/dd>/);
      const audited = (await auditEvents('two_factor.reset')).find((e) => e.target_id === String(user.id));
      expect(audited).toMatchObject({ actor: staff.username, actor_user_id: staff.id, details: { was_enabled: true } });
      expect((await callJson(base(), 'POST', '/api/token/', { username: user.username, password: PASSWORD })).status).toBe(200);

      const boss = await enrolledUser({ isStaff: true, isSuperuser: true });
      const refused = await agent.postForm(new URL(`/admin/users/${boss.user.id}/two-factor`, base()), { csrf: form.csrf });
      expect(refused.status).toBe(403);
      expect((await callJson(base(), 'POST', '/api/token/', { username: boss.user.username, password: PASSWORD })).json['error']).toBe('mfa_required');

      // A signed-in non-staff user cannot reach the action at all.
      const plain = await makeUser(fx.server.latchkey);
      const plainAgent = new UserAgent();
      await adminLogin(base(), plainAgent, plain.username, PASSWORD);
      const blocked = await plainAgent.postForm(new URL(`/admin/users/${boss.user.id}/two-factor`, base()), { csrf: 'x' });
      expect(blocked.status).toBe(403);
      expect((await callJson(base(), 'GET', '/api/me/two-factor/', undefined, boss.access)).json['enabled']).toBe(true);
    });

    it('does not let staff reset their own two-factor on the admin page: that needs its proof in the account center', async () => {
      // Signed in to the admin pages, then two-factor turned on: that browser's session alone
      // (a stolen cookie, a screen left unlocked) must not be able to strip the second factor.
      const admin = await makeUser(fx.server.latchkey, { isStaff: true, isSuperuser: true });
      const agent = new UserAgent();
      expect((await adminLogin(base(), agent, admin.username, PASSWORD)).response.status).toBe(200);
      await enrollOverRest(base(), admin.username);
      const confirm = await (await agent.fetch(`${base()}/admin/users/${admin.id}/two-factor`)).text();
      const refused = await agent.postForm(new URL(`/admin/users/${admin.id}/two-factor`, base()), { csrf: formOf(confirm, '/two-factor').csrf });
      expect(refused.status).toBe(403);
      expect(await refused.text()).toContain('Turn off your own two-factor authentication in your account');
      expect((await callJson(base(), 'POST', '/api/token/', { username: admin.username, password: PASSWORD })).json['error']).toBe('mfa_required');
    });
  });
});
