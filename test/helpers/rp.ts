import * as oidc from 'openid-client';
import type { Latchkey } from '../../src/app.js';
import type { NewClient } from '../../src/storage/clients.js';
import { registerClient } from '../../src/core/clients/client-service.js';
import { formOf, UserAgent } from './browserless.js';

export const REDIRECT_URI = 'http://127.0.0.1:8787/callback';
export const POST_LOGOUT_URI = 'http://127.0.0.1:8787/signed-out';
export const PASSWORD = 'a long enough passphrase';

/** Registers a client through the same code path as the CLI. */
export async function makeClient(latchkey: Latchkey, input: Partial<NewClient> = {}) {
  return registerClient(
    { clients: latchkey.storage.clients, provider: latchkey.host.provider },
    { name: 'Test App', redirectUris: [REDIRECT_URI], postLogoutRedirectUris: [POST_LOGOUT_URI], ...input },
  );
}

/** Creates an active user with {@link PASSWORD}. */
export async function makeUser(latchkey: Latchkey, overrides: Partial<Parameters<Latchkey['storage']['users']['create']>[0]> = {}) {
  const suffix = Math.random().toString(36).slice(2, 8);
  return latchkey.storage.users.create({
    username: `user_${suffix}`,
    email: `user_${suffix}@example.com`,
    passwordHash: await latchkey.services.hasher.hash(PASSWORD),
    firstName: 'Ada',
    lastName: 'Lovelace',
    emailVerified: true,
    ...overrides,
  });
}

/** openid-client configuration from discovery, for a confidential or public client. */
export async function discover(issuer: string, clientId: string, clientSecret: string | null): Promise<oidc.Configuration> {
  return oidc.discovery(
    new URL(issuer),
    clientId,
    clientSecret ? { client_secret: clientSecret } : undefined,
    clientSecret ? oidc.ClientSecretBasic(clientSecret) : oidc.None(),
    { execute: [oidc.allowInsecureRequests] },
  );
}

/** An authorization request with PKCE (S256), state and nonce, as a relying party sends it. */
export async function authorizationRequest(config: oidc.Configuration, params: Record<string, string> = {}) {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid profile email',
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...params,
  });
  return { url, codeVerifier, state, nonce };
}

export interface AuthorizeResult {
  callbackUrl: URL;
  codeVerifier: string;
  state: string;
  nonce: string;
}

/**
 * Runs the front channel of an authorization-code + PKCE flow as a browser would: follows
 * redirects, fills the login form, approves consent, and stops at the client's callback.
 */
export async function authorize(
  config: oidc.Configuration,
  agent: UserAgent,
  login: { username: string; password: string } | null,
  params: Record<string, string> = {},
  { consent = 'allow' as 'allow' | 'deny' | 'skip' } = {},
): Promise<AuthorizeResult> {
  const { url, codeVerifier, state, nonce } = await authorizationRequest(config, params);
  const isCallback = (u: URL) => u.href.startsWith(params['redirect_uri'] ?? REDIRECT_URI);
  let { response, url: at } = await agent.follow(url, isCallback);
  for (let step = 0; step < 4 && !isCallback(at); step++) {
    const html = await response.text();
    if (html.includes('/login"') && login) {
      const form = formOf(html, '/login');
      const posted = await agent.postForm(new URL(form.action, at), { csrf: form.csrf, ...login });
      if (posted.status !== 303) throw new Error(`login failed with ${posted.status}: ${await posted.text()}`);
      ({ response, url: at } = await agent.follow(new URL(posted.headers.get('location') ?? '', at), isCallback));
    } else if (html.includes('/confirm"') && consent !== 'skip') {
      const form = formOf(html, '/confirm');
      const posted = await agent.postForm(new URL(form.action, at), { csrf: form.csrf, decision: consent });
      ({ response, url: at } = await agent.follow(new URL(posted.headers.get('location') ?? '', at), isCallback));
    } else {
      throw new Error(`unexpected page at ${at.href} (${response.status}):\n${html.slice(0, 1500)}`);
    }
  }
  if (!isCallback(at)) throw new Error(`flow did not reach the callback, ended at ${at.href}`);
  return { callbackUrl: at, codeVerifier, state, nonce };
}

/** Front channel plus code exchange through openid-client (which validates the ID token). */
export async function loginAndExchange(
  config: oidc.Configuration,
  agent: UserAgent,
  login: { username: string; password: string },
  params: Record<string, string> = {},
) {
  const result = await authorize(config, agent, login, params);
  const tokens = await oidc.authorizationCodeGrant(config, result.callbackUrl, {
    pkceCodeVerifier: result.codeVerifier,
    expectedState: result.state,
    expectedNonce: result.nonce,
    idTokenExpected: true,
  });
  return { ...result, tokens };
}

/** Latchkey's own REST API as an RFC 8707 resource. */
export const apiResourceOf = (latchkey: Latchkey) => `${latchkey.config.publicUrl}/api`;

/**
 * The parameters an app sends to get a token for Latchkey's REST API with `apiScopes` (the
 * client must be registered for them, `makeClient(…, { apiScopes })`), besides sign-in.
 */
export function apiAuthorization(latchkey: Latchkey, apiScopes: string[], oidcScope = 'openid profile email'): Record<string, string> {
  return { resource: apiResourceOf(latchkey), scope: [oidcScope, ...apiScopes].join(' ') };
}
