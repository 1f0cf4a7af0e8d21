/**
 * The benchmark's ceiling: bare node-oidc-provider with its built-in in-memory adapter, as
 * close to Latchkey's provider configuration as possible (same TTLs, scopes, claims, features,
 * opaque tokens, refresh-token issuing and rotation, RS256 + ES256 keys, PKCE defaults),
 * mounted at /o, plus the least an interaction needs: a GET page with a form and POST
 * login / POST confirm. No database, no logging, no CSRF, no throttling, no audit.
 *
 * The one account is static (findAccount), but its password is checked as Latchkey checks
 * passwords: bcryptjs at BCRYPT_COST after a SHA-256 pre-hash, in a pool of worker threads
 * (one per core), so a login costs the same hashing work on both systems. The user
 * CEILING_NOHASH_USERNAME signs in without any hash (to show what a flow costs without it).
 *
 * Environment: PORT (required), BCRYPT_COST (10), CEILING_CLIENT_ID, CEILING_CLIENT_SECRET,
 * CEILING_REDIRECT_URI, CEILING_USERNAME, CEILING_PASSWORD, CEILING_NOHASH_USERNAME.
 * Prints "ceiling ready: issuer <url>" once listening on 127.0.0.1.
 */
import http from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, calculateJwkThumbprint, type JWK } from 'jose';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { Piscina } from 'piscina';

// Latchkey's own TTLs and scope-to-claims table, read from its build (dist/src) at run time so
// the ceiling follows them without the bench build compiling (and rewriting) anything in src/.
const { TTL } = (await import(new URL('../src/core/tokens/lifetimes.js', import.meta.url).href)) as { TTL: Record<string, number> };
const { SCOPE_CLAIMS } = (await import(new URL('../src/core/accounts/claims.js', import.meta.url).href)) as { SCOPE_CLAIMS: Record<string, readonly string[]> };

function env(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
}

const port = Number(env('PORT'));
const cost = Number(env('BCRYPT_COST', '10'));
const clientId = env('CEILING_CLIENT_ID', 'bench-client');
const clientSecret = env('CEILING_CLIENT_SECRET', 'bench-client-secret-0123456789abcdef');
const redirectUri = env('CEILING_REDIRECT_URI', 'http://127.0.0.1:8787/callback');
const username = env('CEILING_USERNAME', 'bench');
const password = env('CEILING_PASSWORD', 'bench passphrase 42');
const nohashUsername = env('CEILING_NOHASH_USERNAME', 'bench-nohash');
const ACCOUNT_ID = '1';
const issuer = `http://127.0.0.1:${port}/o`;

const pool = new Piscina({
  filename: new URL('./ceiling-hash-worker.js', import.meta.url).href,
  minThreads: 1,
  maxThreads: Math.max(1, os.availableParallelism()),
  idleTimeout: 60_000,
});
const passwordHash = (await pool.run({ op: 'hash', password, cost })) as string;

async function signingKey(alg: 'RS256' | 'ES256'): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'RS256' ? { modulusLength: 2048 } : {}) });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg, use: 'sig' };
}

const claims = {
  sub: ACCOUNT_ID,
  preferred_username: username,
  name: 'Bench User',
  given_name: 'Bench',
  family_name: 'User',
  updated_at: Math.floor(Date.now() / 1000),
  email: 'bench@example.com',
  email_verified: true,
};

const configuration: Configuration = {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      client_name: 'Benchmark client',
      redirect_uris: [redirectUri],
      post_logout_redirect_uris: [],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid profile email offline_access',
    },
  ],
  findAccount: async (_ctx, sub) => (sub === ACCOUNT_ID ? { accountId: ACCOUNT_ID, claims: async () => claims } : undefined),
  jwks: { keys: [await signingKey('RS256'), await signingKey('ES256')] } as Configuration['jwks'],
  cookies: {
    keys: ['ceiling-cookie-key-0123456789abcdef0123456789'],
    long: { signed: true, httpOnly: true, sameSite: 'lax', secure: false },
    short: { signed: true, httpOnly: true, sameSite: 'lax', secure: false },
  },
  claims: Object.fromEntries(Object.entries(SCOPE_CLAIMS).map(([scope, list]) => [scope, [...list]])),
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  responseTypes: ['code', 'none'],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
  enabledJWA: {
    clientAuthSigningAlgValues: ['RS256', 'PS256', 'ES256', 'Ed25519', 'EdDSA'],
    requestObjectSigningAlgValues: ['RS256', 'PS256', 'ES256', 'Ed25519', 'EdDSA'],
  },
  allowOmittingSingleRegisteredRedirectUri: false,
  ttl: { ...TTL },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    claimsParameter: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      allowedPolicy: async (ctx, _client, token) => token.clientId === ctx.oidc.client?.clientId,
    },
    revocation: { enabled: true },
    registration: { enabled: true, initialAccessToken: true },
    registrationManagement: { enabled: true, rotateRegistrationAccessToken: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
};

const provider = new Provider(issuer, configuration);
const providerCallback = provider.callback();

function send(res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(body);
}

function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      data += chunk;
      if (data.length > 16_384) req.destroy(new Error('form too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(data)));
    req.on('error', reject);
  });
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (uid: string, action: 'login' | 'confirm') =>
  action === 'login'
    ? `<!doctype html><title>Sign in</title><form method="post" action="/interaction/${escape(uid)}/login"><input type="hidden" name="csrf" value="-"><input name="username"><input name="password" type="password"><button>Sign in</button></form>`
    : `<!doctype html><title>Allow access</title><form method="post" action="/interaction/${escape(uid)}/confirm"><input type="hidden" name="csrf" value="-"><button name="decision" value="allow">Allow</button></form>`;

async function checkPassword(user: string, pass: string): Promise<boolean> {
  if (user === nohashUsername) return true;
  const matches = (await pool.run({ op: 'verify', password: pass, hash: passwordHash })) as boolean;
  return matches && user === username;
}

/** GET /interaction/:uid, POST /interaction/:uid/login, POST /interaction/:uid/confirm. */
async function interaction(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): Promise<void> {
  const [, , uid = '', action = ''] = pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'interaction mismatch');
  const prompt = details.prompt.name;
  if (req.method === 'GET' && action === '') return send(res, 200, page(uid, prompt === 'login' ? 'login' : 'confirm'));
  if (req.method !== 'POST') return send(res, 405, 'method not allowed');

  const form = await readForm(req);
  let returnTo: string;
  if (action === 'login' && prompt === 'login') {
    const user = form.get('username') ?? '';
    if (!(await checkPassword(user, form.get('password') ?? ''))) return send(res, 401, page(uid, 'login'));
    returnTo = await provider.interactionResult(req, res, { login: { accountId: ACCOUNT_ID, amr: ['pwd'] } }, { mergeWithLastSubmission: false });
  } else if (action === 'confirm' && prompt === 'consent') {
    if (form.get('decision') !== 'allow') {
      returnTo = await provider.interactionResult(req, res, { error: 'access_denied' }, { mergeWithLastSubmission: false });
    } else {
      const accountId = details.session?.accountId ?? ACCOUNT_ID;
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId, clientId: String(details.params['client_id']) });
      if (!grant) return send(res, 400, 'grant not found');
      const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      const grantId = await grant.save();
      returnTo = await provider.interactionResult(req, res, { consent: details.grantId ? {} : { grantId } }, { mergeWithLastSubmission: true });
    }
  } else {
    return send(res, 400, 'unexpected step');
  }
  send(res, 303, '', { location: returnTo });
}

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  if (url === '/o' || url.startsWith('/o/') || url.startsWith('/o?')) {
    // Mount at /o the way koa-mount/express do: the provider reads its mount path from
    // originalUrl minus url.
    (req as http.IncomingMessage & { originalUrl?: string }).originalUrl = url;
    req.url = url.slice(2) || '/';
    if (!req.url.startsWith('/')) req.url = `/${req.url}`;
    void providerCallback(req, res);
    return;
  }
  const pathname = url.split('?')[0] ?? '/';
  if (pathname.startsWith('/interaction/')) {
    interaction(req, res, pathname).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, `interaction failed: ${error instanceof Error ? error.message : String(error)}`);
      else res.destroy();
    });
    return;
  }
  send(res, 404, 'not found');
});

provider.on('server_error', (_ctx: KoaContextWithOIDC, error: Error) => console.error(`ceiling provider error: ${error.stack ?? error.message}`));

server.listen(port, '127.0.0.1', () => {
  const actual = (server.address() as AddressInfo).port;
  console.log(`ceiling ready: issuer http://127.0.0.1:${actual}/o`);
});

const stop = () => {
  server.close();
  server.closeAllConnections();
  void pool.destroy().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
