import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect } from 'vitest';
import type { CreateOptions } from '../../src/app.js';
import type { User } from '../../src/storage/users.js';
import { adminLogin } from './admin.js';
import { formOf, UserAgent } from './browserless.js';
import { useChromium } from './chromium.js';
import { BACKENDS, browserAvailable, type Backend } from './env.js';
import { callApi, type Answer, type ApiRequest } from './http.js';
import { makeUser, PASSWORD } from './rp.js';
import { startTestServer, type TestServer } from './server.js';
import { startSmtpServer, type TestSmtpServer } from './smtp.js';
import { jwtClaims } from './shapes.js';

/** The pair POST /api/token/ answers with. */
export interface ApiPair {
  access: string;
  refresh: string;
}

/** Something that makes one REST call: a suite's own wrapper of callApi (which may check every answer). */
export type ApiCaller = (method: string, path: string, opts?: ApiRequest) => Promise<Answer>;

/**
 * POST /api/token/ as an API client signs in (against `via`, a base URL or a suite's caller):
 * expects 200 and a pair of JWTs (an access and a refresh token, by their `token_type`
 * claim), and returns them.
 */
export async function apiLogin(via: string | ApiCaller, username: string, password = PASSWORD): Promise<ApiPair> {
  const call: ApiCaller = typeof via === 'string' ? (method, path, opts) => callApi(via, method, path, opts) : via;
  const answer = await call('POST', '/api/token/', { json: { username, password } });
  expect(answer.status, answer.text).toBe(200);
  expect(jwtClaims(answer.json['access'], 'access')['token_type']).toBe('access');
  expect(jwtClaims(answer.json['refresh'], 'refresh')['token_type']).toBe('refresh');
  return { access: answer.json['access'] as string, refresh: answer.json['refresh'] as string };
}

/** A page or form answer read once. */
export interface PageAnswer {
  status: number;
  headers: Headers;
  location: string | null;
  html: string;
}

async function pageOf(response: Response): Promise<PageAnswer> {
  return { status: response.status, headers: response.headers, location: response.headers.get('location'), html: await response.text() };
}

/** GET of a page (relative to `baseUrl` unless a full URL) through `agent`, redirects not followed. */
export async function getPage(agent: UserAgent, baseUrl: string, path: string, headers: Record<string, string> = {}): Promise<PageAnswer> {
  return pageOf(await agent.fetch(new URL(path, baseUrl), { headers }));
}

/** POSTs form fields (a list value is sent as repeated fields) straight to `path`. */
export async function postFields(
  agent: UserAgent,
  baseUrl: string,
  path: string,
  fields: Record<string, string | string[]>,
  headers: Record<string, string> = {},
): Promise<PageAnswer> {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(fields)) {
    for (const v of Array.isArray(value) ? value : [value]) params.append(key, v);
  }
  return pageOf(
    await agent.fetch(new URL(path, baseUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: params.toString(),
    }),
  );
}

export interface SubmitOptions {
  /** The CSRF value to send instead of the page's own. */
  csrf?: string;
  /** Headers for both the GET of the page and the POST of its form. */
  headers?: Record<string, string>;
  /** Headers for the POST alone. */
  postHeaders?: Record<string, string>;
  /** Also send the form's other hidden inputs, as a browser does. */
  hidden?: boolean;
}

/**
 * Presses a form as a person does: GETs the page at `pagePath` (expecting 200), reads the
 * form whose action contains `action` and its CSRF token, and POSTs it with `fields`.
 */
export async function submitForm(
  agent: UserAgent,
  baseUrl: string,
  pagePath: string,
  action: string,
  fields: Record<string, string | string[]> = {},
  { csrf, headers = {}, postHeaders = {}, hidden = false }: SubmitOptions = {},
): Promise<PageAnswer> {
  const page = await getPage(agent, baseUrl, pagePath, headers);
  expect(page.status, `GET ${pagePath}: ${page.html.slice(0, 500)}`).toBe(200);
  const form = formOf(page.html, action);
  const pageUrl = new URL(pagePath, baseUrl);
  return postFields(agent, pageUrl.href, form.action, { ...(hidden ? hiddenFieldsOf(page.html, action) : {}), csrf: csrf ?? form.csrf, ...fields }, { ...headers, ...postHeaders });
}

/** The hidden inputs (other than csrf) of the form whose action contains `action`. */
export function hiddenFieldsOf(html: string, action: string): Record<string, string> {
  const form = [...html.matchAll(/<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)].find((f) => f[1]?.includes(action));
  const fields: Record<string, string> = {};
  for (const input of (form?.[2] ?? '').matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    if (input[1] !== 'csrf') fields[input[1]!] = input[2]!.replace(/&amp;/g, '&');
  }
  return fields;
}

/**
 * A cookie-keeping agent signed in the way a person signs in: `path` (the admin pages by
 * default, or /account/) sends it to the login page, the form is filled in, the provider
 * sends it back. Expects the final page to answer 200 at `path`.
 */
export async function signIn(
  baseUrl: string,
  user: { username: string },
  { password = PASSWORD, path = '/admin/', agent = new UserAgent() }: { password?: string; path?: string; agent?: UserAgent } = {},
): Promise<UserAgent> {
  const { response, url, html } = await adminLogin(baseUrl, agent, user.username, password, path);
  expect(response.status, html.slice(0, 500)).toBe(200);
  expect(url.pathname).toBe(path);
  return agent;
}

/** A Latchkey for the enclosing describe block, and what its tests do with it. */
export interface ServerFixture {
  readonly backend: Backend;
  /** The running server (only inside hooks and tests). */
  readonly server: TestServer;
  /** `server.url` + `path`. */
  url(path?: string): string;
  /** One REST call against the server (see callApi). */
  api(method: string, path: string, opts?: ApiRequest): Promise<Answer>;
  /** One REST call with `token` (if any) as the Bearer token and `json` (if any) as the body. */
  bearer(method: string, path: string, token?: string | null, json?: unknown): Promise<Answer>;
  /** POST /api/token/ for `username`: expects a pair of JWTs. */
  apiLogin(username: string, password?: string): Promise<ApiPair>;
  /** A user with PASSWORD, straight through the repository. */
  makeUser(overrides?: Parameters<typeof makeUser>[1]): Promise<User>;
  /** An agent signed into `path` (default /admin/) as `user`. */
  signIn(user: { username: string }, opts?: { password?: string; path?: string; agent?: UserAgent }): Promise<UserAgent>;
  /** Opens `pagePath` and sends its form whose action contains `action`. */
  submit(agent: UserAgent, pagePath: string, action: string, fields?: Record<string, string | string[]>, opts?: SubmitOptions): Promise<PageAnswer>;
  /** The test SMTP server, with `smtp: true`. */
  readonly smtp: TestSmtpServer;
  /** GETs a page through `agent`. */
  get(agent: UserAgent, path: string, headers?: Record<string, string>): Promise<PageAnswer>;
  /** POSTs form fields straight to `path`. */
  post(agent: UserAgent, path: string, fields: Record<string, string | string[]>, headers?: Record<string, string>): Promise<PageAnswer>;
}

export type ServerEnv = Record<string, string> | (() => Record<string, string>);

export interface FixtureOptions {
  /** Start a test SMTP server first and give Latchkey its SMTP_URL (the fixture's `smtp`). */
  smtp?: boolean;
  /** Passed to createLatchkey. */
  create?: CreateOptions;
}

/**
 * Starts a Latchkey with a fresh database on `backend` before the enclosing block's tests
 * (with `env`, which may be a function for values known only in an earlier beforeAll) and
 * stops it after them. The fixture's members work once beforeAll has run.
 */
export function useServer(backend: Backend, env: ServerEnv = {}, { smtp: withSmtp = false, create = {} }: FixtureOptions = {}): ServerFixture {
  let running: TestServer | undefined;
  let mail: TestSmtpServer | undefined;
  beforeAll(async () => {
    if (withSmtp) mail = await startSmtpServer();
    const extra = typeof env === 'function' ? env() : env;
    running = await startTestServer(backend, mail ? { SMTP_URL: mail.url, ...extra } : extra, create);
  });
  afterAll(async () => {
    await running?.stop();
    await mail?.stop();
  });
  const server = (): TestServer => {
    if (!running) throw new Error('the test server is not running (used outside a hook or test?)');
    return running;
  };
  return {
    backend,
    get server() {
      return server();
    },
    get smtp() {
      if (!mail) throw new Error('no SMTP server (useServer without smtp: true, or outside a test)');
      return mail;
    },
    url: (path = '') => `${server().url}${path}`,
    api: (method, path, opts = {}) => callApi(server().url, method, path, opts),
    bearer: (method, path, token, json) => callApi(server().url, method, path, { token: token ?? undefined, json }),
    apiLogin: (username, password) => apiLogin(server().url, username, password),
    makeUser: (overrides = {}) => makeUser(server().latchkey, overrides),
    signIn: (user, opts) => signIn(server().url, user, opts),
    submit: (agent, pagePath, action, fields, opts) => submitForm(agent, server().url, pagePath, action, fields, opts),
    get: (agent, path, headers) => getPage(agent, server().url, path, headers),
    post: (agent, path, fields, headers) => postFields(agent, server().url, path, fields, headers),
  };
}

/**
 * `describe.each(BACKENDS)(title, ...)` with a server per backend: `title` keeps its `%s` for
 * the backend's name, `body` declares the tests with the fixture.
 */
export function describeOnBackends(title: string, body: (fx: ServerFixture) => void): void;
export function describeOnBackends(title: string, env: ServerEnv, body: (fx: ServerFixture) => void, options?: FixtureOptions): void;
export function describeOnBackends(
  title: string,
  envOrBody: ServerEnv | ((fx: ServerFixture) => void),
  maybeBody?: (fx: ServerFixture) => void,
  options: FixtureOptions = {},
): void {
  const body = maybeBody ?? (envOrBody as (fx: ServerFixture) => void);
  const env = maybeBody ? (envOrBody as ServerEnv) : {};
  describe.each(BACKENDS)(title, (backend) => body(useServer(backend, env, options)));
}

/** A fresh browser context and page for each test of the enclosing block, closed after it. */
export interface ChromiumPage {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Closes this test's context and opens another with `options` (e.g. another locale). */
  reopen(options: BrowserContextOptions): Promise<void>;
}

type BrowserContextOptions = NonNullable<Parameters<Browser['newContext']>[0]>;

export function useChromiumPage(browser: () => Browser, options: BrowserContextOptions = { viewport: { width: 800, height: 700 } }): ChromiumPage {
  let context: BrowserContext | undefined;
  let page: Page | undefined;
  const open = async (with_: BrowserContextOptions) => {
    context = await browser().newContext(with_);
    page = await context.newPage();
  };
  beforeEach(async () => open(options));
  afterEach(async () => context?.close());
  return {
    get context() {
      if (!context) throw new Error('no browser context outside a test');
      return context;
    },
    get page() {
      if (!page) throw new Error('no page outside a test');
      return page;
    },
    async reopen(with_) {
      await context?.close();
      await open(with_);
    },
  };
}

export interface ChromiumSuiteOptions extends FixtureOptions {
  env?: ServerEnv;
  /** Options of each test's browser context (default: an 800×700 viewport). */
  context?: BrowserContextOptions;
}

/**
 * A Chromium suite: skipped when no browser is available, one headless Chromium for it, and
 * per backend (`title > sqlite`, `title > pg`) a server and a fresh context and page per test.
 */
export function describeInChromium(
  title: string,
  body: (fx: ServerFixture, tab: ChromiumPage, browser: () => Browser) => void,
  { env = {}, context, ...fixture }: ChromiumSuiteOptions = {},
): void {
  describe.skipIf(!browserAvailable())(title, () => {
    const browser = useChromium();
    describeOnBackends('%s', env, (fx) => body(fx, useChromiumPage(browser, context), browser), fixture);
  });
}
