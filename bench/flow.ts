import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { basicAuth, type RelyingParty } from './protocol.js';

/**
 * A small HTTP client for driving whole authorization-code + PKCE flows over real HTTP, as a
 * browser and a relying party would: node:http with keep-alive (cheap enough that the load
 * generator is not the bottleneck), redirects followed by hand, and a cookie jar that honours
 * cookie paths (the provider scopes its interaction cookies to /interaction/<uid> and
 * /o/auth/<uid>).
 */

export interface SimpleResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function request(
  agent: http.Agent,
  url: URL,
  { method = 'GET', headers = {}, body }: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<SimpleResponse> {
  if (url.hostname !== '127.0.0.1') throw new Error(`refusing to send a request outside 127.0.0.1: ${url.href}`);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: '127.0.0.1',
        port: url.port,
        path: url.pathname + url.search,
        method,
        headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        timeout: 30_000,
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (data += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${url.pathname}`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** One browser's cookies (a single origin: everything here is 127.0.0.1:port). */
export class CookieJar {
  readonly #cookies = new Map<string, { name: string; value: string; path: string }>();

  store(setCookie: string[] | undefined): void {
    for (const line of setCookie ?? []) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = '/';
      let expired = false;
      for (const attribute of attributes) {
        const [key = '', ...rest] = attribute.split('=');
        const k = key.trim().toLowerCase();
        const v = rest.join('=').trim();
        if (k === 'path' && v.startsWith('/')) path = v;
        else if (k === 'max-age' && Number(v) <= 0) expired = true;
        else if (k === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const key = `${name};${path}`;
      if (expired) this.#cookies.delete(key);
      else this.#cookies.set(key, { name, value, path });
    }
  }

  header(pathname: string): string | undefined {
    const matching = [...this.#cookies.values()].filter(
      (c) => c.path === '/' || pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`),
    );
    // Longer paths first, as browsers send them.
    matching.sort((a, b) => b.path.length - a.path.length);
    return matching.length ? matching.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }
}

/** A browser: requests with this jar's cookies, keeping what the server sets. */
export class Browser {
  readonly jar = new CookieJar();
  constructor(readonly agent: http.Agent) {}

  async send(url: URL, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<SimpleResponse> {
    const cookie = this.jar.header(url.pathname);
    const headers = { ...(init.headers ?? {}), ...(cookie ? { cookie } : {}) };
    const response = await request(this.agent, url, { ...init, headers });
    this.jar.store(response.headers['set-cookie']);
    return response;
  }

  postForm(url: URL, fields: Record<string, string>): Promise<SimpleResponse> {
    return this.send(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }
}

/** The form whose action contains `actionContains`, and its hidden csrf field. */
export function formOf(html: string, actionContains: string): { action: string; csrf: string } | undefined {
  for (const match of html.matchAll(/<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)) {
    const action = (match[1] ?? '').replace(/&amp;/g, '&');
    if (!action.includes(actionContains)) continue;
    const csrf = /name="csrf" value="([^"]*)"/.exec(match[2] ?? '')?.[1] ?? '';
    return { action, csrf };
  }
  return undefined;
}

export interface FlowTokens {
  access_token: string;
  refresh_token: string;
  id_token: string;
}

/**
 * One whole flow in a fresh browser: /o/auth (PKCE S256, state, nonce) -> login page -> POST
 * login -> consent page -> POST consent (allow) -> callback with the code -> code exchange at
 * /o/token (client_secret_basic). Throws on anything unexpected.
 */
export async function authorizationCodeFlow(
  agent: http.Agent,
  base: string,
  rp: RelyingParty,
  login: { username: string; password: string },
): Promise<FlowTokens> {
  const browser = new Browser(agent);
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const authorize = new URL('/o/auth', base);
  authorize.search = new URLSearchParams({
    client_id: rp.clientId,
    response_type: 'code',
    redirect_uri: rp.redirectUri,
    scope: rp.scope,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state,
    nonce,
  }).toString();

  let at = authorize;
  let response = await browser.send(at);
  let callback: URL | undefined;
  let loggedIn = false;
  let consented = false;
  for (let step = 0; step < 12 && !callback; step++) {
    if (response.status >= 300 && response.status < 400) {
      const next = new URL(String(response.headers.location ?? ''), at);
      if (next.href.startsWith(rp.redirectUri)) {
        callback = next;
        break;
      }
      at = next;
      response = await browser.send(at);
      continue;
    }
    if (response.status !== 200) throw new Error(`HTTP ${response.status} at ${at.pathname}: ${response.body.slice(0, 200)}`);
    const loginForm = !loggedIn ? formOf(response.body, '/login') : undefined;
    const consentForm = !loginForm && !consented ? formOf(response.body, '/confirm') : undefined;
    if (loginForm) {
      loggedIn = true;
      at = new URL(loginForm.action, at);
      response = await browser.postForm(at, { csrf: loginForm.csrf, username: login.username, password: login.password });
      if (response.status !== 303 && response.status !== 302) throw new Error(`login answered ${response.status}: ${response.body.slice(0, 200)}`);
    } else if (consentForm) {
      consented = true;
      at = new URL(consentForm.action, at);
      response = await browser.postForm(at, { csrf: consentForm.csrf, decision: 'allow' });
      if (response.status !== 303 && response.status !== 302) throw new Error(`consent answered ${response.status}: ${response.body.slice(0, 200)}`);
    } else {
      throw new Error(`unexpected page at ${at.pathname}: ${response.body.slice(0, 200)}`);
    }
  }
  if (!callback) throw new Error('the flow did not reach the redirect_uri');
  if (!loggedIn || !consented) throw new Error('the flow skipped the login or the consent page');
  const params = callback.searchParams;
  if (params.get('error')) throw new Error(`authorization error: ${params.get('error')} ${params.get('error_description') ?? ''}`);
  if (params.get('state') !== state) throw new Error('state mismatch at the callback');
  const code = params.get('code');
  if (!code) throw new Error('no code at the callback');

  const token = await request(agent, new URL('/o/token', base), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(rp.clientId, rp.clientSecret) },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: rp.redirectUri, code_verifier: verifier }).toString(),
  });
  if (token.status !== 200) throw new Error(`code exchange answered ${token.status}: ${token.body.slice(0, 200)}`);
  const tokens = JSON.parse(token.body) as Partial<FlowTokens>;
  if (!tokens.access_token || !tokens.refresh_token || !tokens.id_token) {
    throw new Error(`code exchange lacks a token: ${Object.keys(tokens).join(', ')}`);
  }
  return tokens as FlowTokens;
}

/** Runs `count` flows, `concurrency` at a time (fixtures: tokens minted before a timed run). */
export async function mintTokens(
  base: string,
  rp: RelyingParty,
  login: { username: string; password: string },
  count: number,
  concurrency = 4,
): Promise<FlowTokens[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency * 2 });
  const out: FlowTokens[] = [];
  try {
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, count) }, async () => {
        while (next < count) {
          next++;
          out.push(await authorizationCodeFlow(agent, base, rp, login));
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return out;
}
