import { expect, it } from 'vitest';
import type { User } from '../../src/storage/users.js';
import { accountLogin } from '../helpers/account.js';
import { formOf, UserAgent } from '../helpers/browserless.js';
import { makeUser, PASSWORD } from '../helpers/rp.js';
import { codeAt, wrongCode } from '../helpers/two-factor.js';
import { describeOnBackends } from '../helpers/fixture.js';

interface Page {
  status: number;
  html: string;
  location: string | null;
}

const read = async (response: Response): Promise<Page> => ({ status: response.status, html: await response.text(), location: response.headers.get('location') });
const h1Of = (html: string) => /<h1>([^<]*)<\/h1>/.exec(html)?.[1];
const codesOf = (html: string) => [...html.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1]!);
const secretOf = (html: string) => /<code id="secret">([A-Z2-7]+)<\/code>/.exec(html)?.[1];

/**
 * Two-factor authentication in the account center over real HTTP: set up with the QR code's
 * key (codes computed here as an authenticator app would), recovery codes shown once, the
 * next login asks for a code, new recovery codes, turning it off; and the refusals.
 */
describeOnBackends('account center: two-factor authentication (%s)', (fx) => {
  const url = (path: string) => `${fx.server.url}${path}`;
  const open = async (agent: UserAgent, path: string) => read(await agent.fetch(url(path)));

  /** Sends the form of the two-factor page whose action ends with `action`. */
  async function send(agent: UserAgent, page: Page, action: string, fields: Record<string, string> = {}, csrf?: string): Promise<Page> {
    const form = formOf(page.html, `/account/two-factor${action}`);
    return read(await agent.postForm(url(form.action), { ...fields, csrf: csrf ?? form.csrf }));
  }

  async function signedIn(user: User): Promise<UserAgent> {
    const agent = new UserAgent();
    const { html } = await accountLogin(fx.server.url, agent, user.username, PASSWORD);
    expect(h1Of(html)).toBe('Profile');
    return agent;
  }

  /** Sets two-factor up through the pages (the password first); the app's secret and the recovery codes shown. */
  async function enable(agent: UserAgent) {
    const setup = await send(agent, await open(agent, '/account/two-factor'), '/setup', { password: PASSWORD });
    const secret = secretOf(setup.html)!;
    const done = await send(agent, setup, '/confirm', { code: codeAt(secret) });
    return { secret, done, recoveryCodes: codesOf(done.html) };
  }

  it('sets up an authenticator app: QR code and key, a wrong code refused, the right one turns it on and shows the recovery codes once', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = await signedIn(user);
    const off = await open(agent, '/account/two-factor');
    expect(off.status).toBe(200);
    expect(off.html).toContain('Set up an authenticator app');

    const setup = await send(agent, off, '/setup', { password: PASSWORD });
    expect(setup.status, setup.html).toBe(200);
    expect(setup.html).toMatch(/<img id="qr" src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+"/);
    const secret = secretOf(setup.html);
    expect(secret).toMatch(/^[A-Z2-7]{16,}$/);

    const wrong = await send(agent, setup, '/confirm', { code: wrongCode(secret!) });
    expect(wrong.status).toBe(400);
    expect(wrong.html).toContain('The code is not valid');
    // The same key is shown again: the app already holds it.
    expect(secretOf(wrong.html)).toBe(secret);
    expect((await fx.server.latchkey.services.twoFactor.status(user)).enabled).toBe(false);

    // Starting again with a new key needs the password too; without it the key stays.
    const restartRefused = await send(agent, wrong, '/setup', {});
    expect(restartRefused.status).toBe(400);
    expect(restartRefused.html).toContain('<p class="field-error" id="password-error">This field is required.</p>');
    expect(secretOf(restartRefused.html)).toBe(secret);

    const done = await send(agent, restartRefused, '/confirm', { code: codeAt(secret!) });
    expect(done.status, done.html).toBe(200);
    const codes = codesOf(done.html);
    expect(codes).toHaveLength(10);
    expect(done.html).toContain('they are not shown again');
    expect((await fx.server.latchkey.services.twoFactor.status(user)).enabled).toBe(true);

    const later = await open(agent, '/account/two-factor');
    expect(later.html).toContain('Two-factor authentication is on since');
    expect(later.html).toContain('Unused recovery codes: 10.');
    expect(codesOf(later.html)).toEqual([]);
    expect(secretOf(later.html)).toBeUndefined();
  });

  it('starts no enrollment without the password or with a wrong one, and counts the wrong one as a failed sign-in', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = await signedIn(user);
    const off = await open(agent, '/account/two-factor');
    expect(off.html).toContain('name="password"');

    const without = await send(agent, off, '/setup', {});
    expect(without.status).toBe(400);
    expect(without.html).toContain('<p class="field-error" id="password-error">This field is required.</p>');
    expect(without.html).toContain('aria-invalid="true" aria-describedby="password-error"');
    const wrong = await send(agent, off, '/setup', { password: 'not the password' });
    expect(wrong.status).toBe(400);
    expect(wrong.html).toContain('<p class="field-error" id="password-error">The password is not correct.</p>');
    for (const page of [without, wrong]) {
      expect(secretOf(page.html)).toBeUndefined();
      expect(page.html).not.toContain('id="qr"');
      expect(page.html).toContain('Set up an authenticator app');
    }
    expect(await fx.server.latchkey.services.twoFactor.status(user)).toMatchObject({ enabled: false, pending: false });
    const failures = await fx.server.latchkey.services.audit.list({ offset: 0, limit: 50, event: 'login.failure' });
    expect(failures.events.some((e) => e.actor_user_id === user.id)).toBe(true);

    // The right one starts it, and is recorded as a confirmation, not a sign-in.
    const before = await fx.server.latchkey.storage.users.findById(user.id);
    const setup = await send(agent, off, '/setup', { password: PASSWORD });
    expect(setup.status, setup.html).toBe(200);
    expect(secretOf(setup.html)).toMatch(/^[A-Z2-7]{16,}$/);
    expect(await fx.server.latchkey.services.twoFactor.status(user)).toMatchObject({ enabled: false, pending: true });
    const confirmed = await fx.server.latchkey.services.audit.list({ offset: 0, limit: 50, event: 'identity.confirmed' });
    expect(confirmed.events.some((e) => e.actor_user_id === user.id)).toBe(true);
    expect((await fx.server.latchkey.storage.users.findById(user.id))?.lastLogin).toBe(before?.lastLogin);
  });

  it('asks for the code at the next sign-in, and lets a recovery code in once', async () => {
    const user = await makeUser(fx.server.latchkey);
    const { recoveryCodes } = await enable(await signedIn(user));
    const agent = new UserAgent();
    const { html, url: at } = await accountLogin(fx.server.url, agent, user.username, PASSWORD);
    expect(h1Of(html)).toBe('Two-step verification');
    const form = formOf(html, '/two-factor');
    const posted = await agent.postForm(new URL(form.action, at), { csrf: form.csrf, code: recoveryCodes[0]! });
    expect(posted.status).toBe(303);
    const home = await agent.follow(new URL(posted.headers.get('location')!, at));
    expect(h1Of(await home.response.text())).toBe('Profile');
    expect((await open(agent, '/account/two-factor')).html).toContain('Unused recovery codes: 9.');
  });

  it('makes new recovery codes for the password and a valid code only; the old ones are gone', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = await signedIn(user);
    const { secret, recoveryCodes } = await enable(agent);
    const page = await open(agent, '/account/two-factor');
    const refused = await send(agent, page, '/recovery-codes', { password: PASSWORD, code: wrongCode(secret) });
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('The code is not valid. Use the current code of your authenticator app.');
    expect(codesOf(refused.html)).toEqual([]);
    // A good code without the password, or with a wrong one, is refused and not used up.
    const noPassword = await send(agent, page, '/recovery-codes', { code: recoveryCodes[1]! });
    expect(noPassword.status).toBe(400);
    expect(noPassword.html).toContain('This field is required.');
    expect(codesOf(noPassword.html)).toEqual([]);
    const badPassword = await send(agent, page, '/recovery-codes', { password: 'not the password', code: recoveryCodes[1]! });
    expect(badPassword.status).toBe(400);
    // The error stands under the form that was sent, not under "Turn off" (which asks the same).
    expect(badPassword.html).toContain('<p class="field-error" id="regenerate_password-error">The password is not correct.</p>');
    expect(badPassword.html).toContain('aria-describedby="regenerate_password-error"');
    expect(badPassword.html).not.toContain('id="password-error"');
    expect(codesOf(badPassword.html)).toEqual([]);
    expect((await open(agent, '/account/two-factor')).html).toContain('Unused recovery codes: 10.');
    const fresh = await send(agent, page, '/recovery-codes', { password: PASSWORD, code: recoveryCodes[1]! });
    expect(fresh.status, fresh.html).toBe(200);
    const codes = codesOf(fresh.html);
    expect(codes).toHaveLength(10);
    expect(codes.some((c) => recoveryCodes.includes(c))).toBe(false);
    const check = await fx.server.latchkey.services.twoFactor.verify(user, recoveryCodes[2]!, { ip: '127.0.0.1', via: 'test' });
    expect(check.ok).toBe(false);
  });

  it('turns off only with the password and a code, each right', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = await signedIn(user);
    const { secret } = await enable(agent);
    const page = await open(agent, '/account/two-factor');

    const codeOnly = await send(agent, page, '/disable', { password: '', code: wrongCode(secret) });
    expect(codeOnly.status).toBe(400);
    expect(codeOnly.html).toContain('This field is required.');
    // The password is checked first, so a wrong one does not use up the code.
    const badPassword = await send(agent, page, '/disable', { password: 'not the password', code: codeAt(secret, 1) });
    expect(badPassword.status).toBe(400);
    // Under "Turn off", the form that was sent; not under "new recovery codes" (which asks the same).
    expect(badPassword.html).toContain('<p class="field-error" id="password-error">The password is not correct.</p>');
    expect(badPassword.html).not.toContain('id="regenerate_password-error"');
    expect((await fx.server.latchkey.services.twoFactor.status(user)).enabled).toBe(true);

    const off = await send(agent, page, '/disable', { password: PASSWORD, code: codeAt(secret, 1) });
    expect(off.status, off.html).toBe(303);
    expect(off.location).toBe('/account/two-factor?done=two-factor-off');
    expect((await open(agent, off.location!)).html).toContain('Two-factor authentication is off.');
    expect((await fx.server.latchkey.services.twoFactor.status(user)).enabled).toBe(false);
  });

  it('refuses every form without its CSRF token, and sends anonymous visitors to the login page', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = await signedIn(user);
    const page = await open(agent, '/account/two-factor');
    const forged = await send(agent, page, '/setup', { password: PASSWORD }, 'forged');
    expect(forged.status).toBe(403);
    expect((await fx.server.latchkey.services.twoFactor.status(user)).pending).toBe(false);

    const anonymous = await read(await new UserAgent().fetch(url('/account/two-factor')));
    expect(anonymous.status).toBe(302);
    expect(anonymous.location).toContain('/o/auth');
    const post = await read(await new UserAgent().postForm(url('/account/two-factor/setup'), {}));
    expect(post.status).toBe(401);
  });

  it('speaks French to a French browser', async () => {
    const user = await makeUser(fx.server.latchkey);
    const agent = await signedIn(user);
    const page = await read(await agent.fetch(url('/account/two-factor'), { headers: { 'accept-language': 'fr' } }));
    expect(page.html).toContain('Configurer une application d’authentification');
  });
});
