import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { describe, expect, it } from 'vitest';
import { errorHandler } from '../../src/web/http/error-handler.js';
import { unroutedErrors } from '../../src/web/http/error-pages.js';
import { createViews } from '../../src/web/http/views.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { formOf, UserAgent } from '../helpers/browserless.js';
import { authorizationRequest, discover, makeClient, PASSWORD } from '../helpers/rp.js';
import { setupLinkLog } from '../helpers/setup-link.js';
import { testEnv } from '../helpers/server.js';
import { startLatchkey } from '../../src/start.js';

const HTML = { accept: 'text/html,application/xhtml+xml' };
const h1Of = (html: string) => /<h1>([^<]*)<\/h1>/.exec(html)?.[1];
const unique = (prefix: string) => `${prefix}_${Math.random().toString(36).slice(2, 8)}`;

describeOnBackends('front door: welcome page and error pages (%s)', (fx) => {
  it('serves a welcome page to browsers and keeps the discovery redirect for scripts', async () => {
    const page = await fetch(fx.url('/'), { headers: HTML, redirect: 'manual' });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(h1Of(html)).toBe('Welcome to Latchkey');
    expect(html).toContain(`<code>${fx.server.issuer}</code>`);
    expect(html).toContain(`href="${fx.server.issuer}/.well-known/openid-configuration"`);
    expect(html).toContain('href="/account/"');
    expect(html).toContain('href="/admin/"');
    expect(html).toContain('href="/account/register"');
    // No superuser yet on this fresh database: the page points at the setup link.
    expect(html).toContain('one-time setup link');

    const french = await fetch(fx.url('/'), { headers: { ...HTML, 'accept-language': 'fr-FR,fr;q=0.9' } });
    expect(h1Of(await french.text())).toBe('Bienvenue sur Latchkey');

    const script = await fetch(fx.url('/'), { redirect: 'manual' });
    expect(script.status).toBe(302);
    expect(script.headers.get('location')).toBe('/o/.well-known/openid-configuration');
  });

  it('answers an unknown page with a styled 404 for browsers and JSON for everyone else', async () => {
    const page = await fetch(fx.url('/no/such/page'), { headers: { ...HTML, 'accept-language': 'en' } });
    expect(page.status).toBe(404);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(h1Of(html)).toBe('Page not found');
    expect(html).toContain('/static/latchkey.css');
    expect(html).toContain('href="/"');

    const french = await fetch(fx.url('/no/such/page'), { headers: { ...HTML, 'accept-language': 'fr' } });
    expect(h1Of(await french.text())).toBe('Page introuvable');

    const json = await fetch(fx.url('/no/such/page'));
    expect(json.status).toBe(404);
    expect(await json.json()).toEqual({ error: 'not_found', error_description: 'Nothing is served at /no/such/page.', detail: 'Not found.' });

    // Under /api a browser gets JSON too, and under /o the provider's unserved paths as well.
    for (const path of ['/api/no-such-thing/', '/o/no-such-endpoint']) {
      const api = await fetch(fx.url(path), { headers: path.startsWith('/api') ? HTML : {} });
      expect(api.status, path).toBe(404);
      expect(api.headers.get('content-type'), path).toMatch(/^application\/json/);
      expect(((await api.json()) as Record<string, unknown>)['detail']).toBe('Not found.');
    }
  });

  it('answers a wrong method with a styled 405 for browsers and JSON (with Allow) for API clients', async () => {
    const page = await fetch(fx.url('/health'), { method: 'POST', headers: HTML });
    expect(page.status).toBe(405);
    expect(h1Of(await page.text())).toBe('Not allowed');

    const api = await fetch(fx.url('/users/register/'));
    expect(api.status).toBe(405);
    expect(api.headers.get('allow')).toContain('POST');
    const body = (await api.json()) as Record<string, unknown>;
    expect(body['error']).toBe('method_not_allowed');
    expect(body['detail']).toBe('Method "GET" not allowed.');
    expect(typeof body['error_description']).toBe('string');
  });

  it('sends browsers opening GET /users/register/ to the sign-up page', async () => {
    const answer = await fetch(fx.url('/users/register/'), { headers: HTML, redirect: 'manual' });
    expect(answer.status).toBe(302);
    expect(answer.headers.get('location')).toBe('/account/register');
  });
});

describe('the error page of a 500', () => {
  it('shows a generic sentence to browsers and JSON to API clients, never the error or its stack', async () => {
    const logged: unknown[] = [];
    const app = new Koa();
    app.use(errorHandler(createViews(), (_message, error) => void logged.push(error)));
    app.use(unroutedErrors(createViews()));
    app.use(() => {
      throw new Error('secret internals at /srv/latchkey/src/thing.ts:12');
    });
    const server = http.createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/boom`;
    try {
      const page = await fetch(url, { headers: HTML });
      expect(page.status).toBe(500);
      const html = await page.text();
      expect(h1Of(html)).toBe('Something went wrong');
      expect(html).toContain('An unexpected error occurred. Please try again later.');
      expect(html).not.toContain('secret internals');
      expect(html).not.toContain('thing.ts');

      const json = await fetch(url);
      expect(json.status).toBe(500);
      expect(await json.json()).toEqual({ error: 'server_error', error_description: 'An unexpected error occurred.', detail: 'An unexpected error occurred.' });
      expect(logged).toHaveLength(2);
    } finally {
      server.close();
    }
  });
});

describeOnBackends('sign-up page (%s)', (fx) => {
  const register = async (agent: UserAgent, fields: Record<string, string>, csrf?: string) => {
    const page = await agent.fetch(fx.url('/account/register'));
    expect(page.status).toBe(200);
    const form = formOf(await page.text(), '/account/register');
    return agent.postForm(fx.url(form.action), { csrf: csrf ?? form.csrf, ...fields });
  };

  it('states the password policy and is linked from the login page', async () => {
    const page = await fetch(fx.url('/account/register'));
    const html = await page.text();
    expect(h1Of(html)).toBe('Create an account');
    expect(html).toContain('At least 8 characters. Long passphrases are welcome; very common passwords are refused.');

    const made = await makeClient(fx.server.latchkey, { name: 'Sign-up Link App' });
    const config = await discover(fx.server.issuer, made.client.clientId, made.clientSecret ?? '');
    const request = await authorizationRequest(config);
    const agent = new UserAgent();
    const { response, url } = await agent.follow(request.url);
    const login = await response.text();
    expect(h1Of(login)).toBe('Sign in');
    const uid = url.pathname.split('/').at(-1);
    expect(login).toContain(`href="/account/register?uid=${uid}"`);
  });

  it('re-renders a weak password with its message next to the field, keeping what was typed but not the password', async () => {
    const username = unique('weak');
    const answer = await register(new UserAgent(), { username, email: `${username}@example.com`, password: 'password', confirm_password: 'password' });
    expect(answer.status).toBe(400);
    const html = await answer.text();
    expect(html).toMatch(/<p class="field-error" id="password-error">This password is too common; choose one that is harder to guess.<\/p>/);
    expect(html).toContain(`value="${username}"`);
    expect(html).toContain(`value="${username}@example.com"`);
    expect(html).not.toContain('value="password"');
    expect(await fx.server.latchkey.storage.users.findByLogin(username)).toBeUndefined();
  });

  it('refuses mismatched passwords, a taken username and a missing email next to their fields', async () => {
    const existing = await fx.makeUser();
    const username = unique('mismatch');
    const mismatch = await register(new UserAgent(), { username, email: `${username}@example.com`, password: PASSWORD, confirm_password: `${PASSWORD}!` });
    expect(mismatch.status).toBe(400);
    expect(await mismatch.text()).toContain('id="confirm_password-error">The two passwords do not match.');

    const taken = await register(new UserAgent(), { username: existing.username, email: `${username}@example.com`, password: PASSWORD, confirm_password: PASSWORD });
    expect(taken.status).toBe(409);
    expect(await taken.text()).toContain('id="username-error">A user with that username already exists.');

    const noEmail = await register(new UserAgent(), { username, email: '', password: PASSWORD, confirm_password: PASSWORD });
    expect(noEmail.status).toBe(400);
    expect(await noEmail.text()).toContain('id="email-error">This field is required.');
    expect(await fx.server.latchkey.storage.users.findByLogin(username)).toBeUndefined();
  });

  it('refuses a form without this browser\'s CSRF token', async () => {
    const username = unique('csrf');
    const answer = await register(new UserAgent(), { username, email: `${username}@example.com`, password: PASSWORD, confirm_password: PASSWORD }, 'x'.repeat(43));
    expect(answer.status).toBe(403);
    expect(await answer.text()).toContain('This form has expired. Please try again.');
    expect(await fx.server.latchkey.storage.users.findByLogin(username)).toBeUndefined();
  });

  it('keeps the JSON POST /users/register/ of API clients as it was', async () => {
    const username = unique('api');
    const answer = await fx.api('POST', '/users/register/', { json: { username, password: PASSWORD, confirm_password: PASSWORD } });
    expect(answer.status).toBe(201);
    expect(answer.json['username']).toBe(username);
  });
});

describeOnBackends('sign-up page with registration closed (%s)', { ALLOW_REGISTRATION: 'false' }, (fx) => {
  it('is not linked from the login page or the welcome page, and refuses GET and POST', async () => {
    const made = await makeClient(fx.server.latchkey, { name: 'Closed Registration App' });
    const config = await discover(fx.server.issuer, made.client.clientId, made.clientSecret ?? '');
    const request = await authorizationRequest(config);
    const agent = new UserAgent();
    const login = await (await agent.follow(request.url)).response.text();
    expect(h1Of(login)).toBe('Sign in');
    expect(login).not.toContain('/account/register');
    const welcome = await (await fetch(fx.url('/'), { headers: HTML })).text();
    expect(welcome).not.toContain('/account/register');

    const page = await agent.fetch(fx.url('/account/register'));
    expect(page.status).toBe(403);
    expect(h1Of(await page.text())).toBe('Registration is closed');
    const username = unique('closed');
    const posted = await agent.postForm(fx.url('/account/register'), { username, email: `${username}@example.com`, password: PASSWORD, confirm_password: PASSWORD });
    expect(posted.status).toBe(403);
    expect(await fx.server.latchkey.storage.users.findByLogin(username)).toBeUndefined();
  });
});

const setupLog = setupLinkLog();

describeOnBackends('first administrator setup link (%s)', {}, (fx) => {
  const tokenOf = (link: string) => new URL(link).searchParams.get('token') ?? '';
  const openForm = async (agent: UserAgent, link: string) => {
    const page = await agent.fetch(link);
    expect(page.status).toBe(200);
    return formOf(await page.text(), '/setup');
  };

  it('prints a long random link at start and stores only its hash', async () => {
    const link = setupLog.linkFor(fx.server.url);
    const token = tokenOf(link);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const rows = await fx.server.latchkey.storage.knex('setup_tokens').select('*');
    expect(rows.length).toBeGreaterThan(0);
    expect(JSON.stringify(rows)).not.toContain(token);

    // The page holding the token is never cached, framed or sent on as a Referer.
    const page = await fetch(link);
    expect(page.status).toBe(200);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
  });

  it('does not reflect a forged token or uid', async () => {
    const odd = encodeURIComponent('"><script>alert(1)</script>');
    const setup = await fetch(fx.url(`/setup?token=${odd}`));
    expect(setup.status).toBe(400);
    expect(await setup.text()).not.toContain('<script>');
    const signup = await fetch(fx.url(`/account/register?uid=${odd}`));
    expect(signup.status).toBe(200);
    const html = await signup.text();
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('name="uid"');
  });

  it('refuses an unknown token and a form without the CSRF token', async () => {
    const bad = await fetch(fx.url(`/setup?token=${'A'.repeat(43)}`));
    expect(bad.status).toBe(400);
    expect(h1Of(await bad.text())).toBe('Setup link not valid');

    const agent = new UserAgent();
    const link = setupLog.linkFor(fx.server.url);
    await openForm(agent, link);
    const username = unique('admin');
    const forged = await agent.postForm(fx.url('/setup'), { csrf: 'x'.repeat(43), token: tokenOf(link), username, email: `${username}@example.com`, password: PASSWORD, confirm_password: PASSWORD });
    expect(forged.status).toBe(403);
    expect(await fx.server.latchkey.storage.users.findByLogin(username)).toBeUndefined();
  });

  it('re-renders a weak password and keeps the link usable', async () => {
    const agent = new UserAgent();
    const link = setupLog.linkFor(fx.server.url);
    const form = await openForm(agent, link);
    const username = unique('admin');
    const weak = await agent.postForm(fx.url(form.action), { csrf: form.csrf, token: tokenOf(link), username, email: `${username}@example.com`, password: 'short', confirm_password: 'short' });
    expect(weak.status).toBe(400);
    const html = await weak.text();
    expect(html).toContain('id="password-error">Password must be at least 8 characters.');
    expect(html).toContain(`value="${username}"`);
    expect((await agent.fetch(link)).status).toBe(200);
  });

  it('creates the superuser once; the link then dies, and so does every other one', async () => {
    const agent = new UserAgent();
    const link = setupLog.linkFor(fx.server.url);
    const form = await openForm(agent, link);
    const username = unique('admin');
    const fields = { csrf: form.csrf, token: tokenOf(link), username, email: `${username}@example.com`, password: PASSWORD, confirm_password: PASSWORD };
    const created = await agent.postForm(fx.url(form.action), fields);
    expect(created.status).toBe(201);
    expect(h1Of(await created.text())).toBe('Administrator created');
    const user = await fx.server.latchkey.storage.users.findByLogin(username);
    expect(user?.isSuperuser).toBe(true);
    expect(user?.isStaff).toBe(true);

    const again = await agent.postForm(fx.url(form.action), { ...fields, username: unique('second') });
    expect(again.status).toBe(410);
    expect((await agent.fetch(link)).status).toBe(410);
    expect(Number((await fx.server.latchkey.storage.knex('setup_tokens').count({ n: '*' }).first())?.['n'])).toBe(0);

    const { events } = await fx.server.latchkey.services.audit.list({ offset: 0, limit: 100, event: 'user.created' });
    expect(events.some((e) => e.actor === 'initial-setup' && e.target_id === String(user?.id))).toBe(true);

    // The welcome page no longer points at a setup link.
    expect(await (await fetch(fx.url('/'), { headers: HTML })).text()).not.toContain('one-time setup link');
  });
}, { create: { logger: setupLog.logger } });

const otherLog = setupLinkLog();

describeOnBackends('setup link once a superuser exists another way (%s)', {}, (fx) => {
  it('refuses the link as soon as any superuser exists (made by the CLI or another process)', async () => {
    const link = otherLog.linkFor(fx.server.url);
    expect((await fetch(link)).status).toBe(200);
    // As `createsuperuser` or another process on the same database would: straight into the table.
    await fx.makeUser({ isStaff: true, isSuperuser: true });
    const page = await fetch(link);
    expect(page.status).toBe(410);
    expect(h1Of(await page.text())).toBe('An administrator exists');
  });
}, { create: { logger: otherLog.logger } });

describeOnBackends('sign-up throttle (%s)', { TRUST_PROXY: '1' }, (fx) => {
  it('counts sign-ups per client IP like reset-link requests: the 21st from one address is refused with 429', async () => {
    const ip = { 'x-forwarded-for': '203.0.113.77' };
    const signUp = async (username: string) => {
      const agent = new UserAgent();
      const page = await agent.fetch(fx.url('/account/register'), { headers: ip });
      const form = formOf(await page.text(), '/account/register');
      return agent.fetch(fx.url(form.action), {
        method: 'POST',
        headers: { ...ip, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf: form.csrf, username, email: `${username}@example.com`, password: PASSWORD, confirm_password: PASSWORD }).toString(),
      });
    };
    for (let i = 0; i < 20; i++) expect((await signUp(unique(`many${i}`))).status).toBe(201);
    const refusedName = unique('many');
    const refused = await signUp(refusedName);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await refused.text()).toContain('Too many');
    expect(await fx.server.latchkey.storage.users.findByLogin(refusedName)).toBeUndefined();
  });
});

const sharedLog = setupLinkLog();

describeOnBackends('setup links across processes on one database (%s)', {}, (fx) => {
  it('a second process prints its own link; parallel uses make one superuser; then every link dies', async () => {
    const first = sharedLog.linkFor(fx.server.url);
    const second = await startLatchkey(testEnv(fx.server.db.url), { logger: sharedLog.logger });
    try {
      const other = sharedLog.linkFor(second.url);
      expect(tokenOfLink(other)).not.toBe(tokenOfLink(first));

      // The same link sent twice at once, to both processes: exactly one superuser.
      const agents = [new UserAgent(), new UserAgent()];
      const forms = await Promise.all(agents.map(async (agent, i) => formOf(await (await agent.fetch(i === 0 ? other : other.replace(second.url, fx.server.url))).text(), '/setup')));
      const names = [unique('racer'), unique('racer')];
      const answers = await Promise.all(
        agents.map((agent, i) =>
          agent.postForm(`${i === 0 ? second.url : fx.server.url}/setup`, {
            csrf: forms[i]!.csrf,
            token: tokenOfLink(other),
            username: names[i]!,
            email: `${names[i]}@example.com`,
            password: PASSWORD,
            confirm_password: PASSWORD,
          }),
        ),
      );
      expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
      const made = await Promise.all(names.map((name) => fx.server.latchkey.storage.users.findByLogin(name)));
      expect(made.filter(Boolean)).toHaveLength(1);

      // The first process's own, unused link is dead too.
      expect((await fetch(first)).status).toBe(410);
    } finally {
      await second.close(1000);
    }
  });
}, { create: { logger: sharedLog.logger } });

function tokenOfLink(link: string): string {
  return new URL(link).searchParams.get('token') ?? '';
}
