import { randomBytes } from 'node:crypto';
import { UnsecuredJWT } from 'jose';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { ClientRepository } from '../storage/clients.js';
import type { User, UserRepository } from '../storage/users.js';

/**
 * Latchkey's own pages are first-party relying parties of its provider, as Keycloak's admin
 * and account consoles are: they ask /o/auth for a login session (response_type=none, no
 * consent: see `loadExistingGrant` in provider.ts), then read that session. People therefore
 * sign in on the one login page, and signing out there ends every page's login at once.
 */
export const ADMIN_CLIENT_ID = 'latchkey-admin';
export const ACCOUNT_CLIENT_ID = 'latchkey-account';

/** Clients of our own pages: no consent screen, and never shown to people as applications. */
export const PAGE_CLIENT_IDS: ReadonlySet<string> = new Set([ADMIN_CLIENT_ID, ACCOUNT_CLIENT_ID]);

/** Seconds a pushed pages' authorization request stays usable (the library's PAR maximum). */
const PAR_TTL = 60;

/** One group of pages: its client, and the path everything of it lives under. */
export interface PagesClient {
  clientId: string;
  name: string;
  /** e.g. `/admin`: the callback is `${base}/callback`, the home page `${base}/`. */
  base: string;
}

export const ADMIN_PAGES: PagesClient = { clientId: ADMIN_CLIENT_ID, name: 'Latchkey administration', base: '/admin' };
export const ACCOUNT_PAGES: PagesClient = { clientId: ACCOUNT_CLIENT_ID, name: 'Latchkey account', base: '/account' };
const PAGES_BY_ID: ReadonlyMap<string, PagesClient> = new Map([ADMIN_PAGES, ACCOUNT_PAGES].map((pages) => [pages.clientId, pages]));

/**
 * What the clients table holds for a pages client: the same in every process, without any
 * URL. The redirect URIs are this process's own (its PUBLIC_URL), added when the provider
 * reads the client ({@link withOwnPagesUris}): a process started with another PUBLIC_URL (or
 * none) on the same database would otherwise rewrite them for the whole cluster, and every
 * other process's pages would fail with invalid_redirect_uri.
 */
function storedPagesMetadata({ name }: PagesClient) {
  return {
    client_name: name,
    redirect_uris: [] as string[],
    post_logout_redirect_uris: [] as string[],
    grant_types: [] as string[],
    response_types: ['none'],
    token_endpoint_auth_method: 'none',
    scope: 'openid',
  };
}

/**
 * Creates a pages client on first start; a row from before (which held one process's URLs)
 * gets the shared form. Every process writes the same value, so none undoes another.
 */
export async function ensurePagesClient(clients: ClientRepository, pages: PagesClient): Promise<void> {
  const metadata = storedPagesMetadata(pages);
  const existing = await clients.find(pages.clientId);
  if (existing) {
    if (JSON.stringify(existing.metadata) !== JSON.stringify(metadata)) await clients.update(pages.clientId, pages.name, metadata);
    return;
  }
  try {
    await clients.insertDraft({ clientId: pages.clientId, clientSecret: null, name: pages.name, metadata });
  } catch (error) {
    // Another process may have created it at the same moment.
    if (!(await clients.find(pages.clientId))) throw error;
  }
}

/**
 * The provider's view of a client as this process serves it: a pages client gets the
 * redirect URIs under this process's PUBLIC_URL (whatever the row says); others are as stored.
 */
export function withOwnPagesUris(publicUrl: string): (payload: Record<string, unknown>) => Record<string, unknown> {
  return (payload) => {
    const pages = typeof payload['client_id'] === 'string' ? PAGES_BY_ID.get(payload['client_id']) : undefined;
    if (!pages) return payload;
    return { ...payload, redirect_uris: [`${publicUrl}${pages.base}/callback`], post_logout_redirect_uris: [`${publicUrl}${pages.base}/`] };
  };
}

/** The provider's login session of a browser. */
export type ProviderSession = Awaited<ReturnType<Provider['Session']['get']>>;

/** An active person signed in in this browser, and the provider session that says so. */
export interface SignedIn {
  user: User;
  session: ProviderSession;
}

export interface PagesLoginDeps {
  provider: () => Provider;
  users: UserRepository;
  publicUrl: string;
  secureCookies: boolean;
  client: PagesClient;
}

/**
 * Sign-in for one group of pages: sends browsers to the login page with a state kept in a
 * signed cookie (scoped to the pages' path), and takes them back to where they were going.
 */
export function createPagesLogin({ provider, users, publicUrl, secureCookies, client }: PagesLoginDeps) {
  const { clientId, base } = client;
  const stateCookie = `lk.${base.replace(/^\//, '')}_state`;
  const cookieOptions = { signed: true, httpOnly: true, sameSite: 'lax' as const, secure: secureCookies, path: base, maxAge: 10 * 60 * 1000 };
  const ownPath = new RegExp(`^${base}(/|$|\\?)`);

  /**
   * The /o/auth URL for these parameters. When the client must use PAR (REQUIRE_PAR), they
   * are pushed in-process, stored as the PAR endpoint stores a public client's request.
   */
  async function authorizationUrl(params: Record<string, string>): Promise<URL> {
    const url = new URL(`${publicUrl}/o/auth`);
    const p = provider();
    if (!(await p.Client.find(clientId))?.requirePushedAuthorizationRequests) {
      url.search = new URLSearchParams(params).toString();
      return url;
    }
    const now = Math.floor(Date.now() / 1000);
    const request = new UnsecuredJWT(params).setIssuer(clientId).setAudience(p.issuer).setIssuedAt(now).setNotBefore(now).setExpirationTime(now + PAR_TTL).encode();
    const id = await new p.PushedAuthorizationRequest({ request }).save(PAR_TTL);
    url.search = new URLSearchParams({ client_id: clientId, request_uri: `urn:ietf:params:oauth:request_uri:${id}` }).toString();
    return url;
  }

  /** Sends the browser to the login page, remembering where it was going. */
  async function startLogin(ctx: Context, returnTo: string, prompt?: string): Promise<void> {
    const state = randomBytes(24).toString('base64url');
    ctx.cookies.set(stateCookie, JSON.stringify({ state, returnTo }), cookieOptions);
    const url = await authorizationUrl({
      client_id: clientId,
      response_type: 'none',
      redirect_uri: `${publicUrl}${base}/callback`,
      scope: 'openid',
      state,
      ...(prompt ? { prompt } : {}),
    });
    ctx.redirect(url.href);
  }

  /**
   * The active person signed in in this browser. Otherwise the request is answered and the
   * result is undefined: a GET goes to the login page (prompt=login when the session's
   * account is gone or inactive), anything else gets `refuse`, since acting on a form
   * after a login nobody asked for would be a surprise.
   */
  async function signedIn(ctx: Context, refuse: (ctx: Context) => void): Promise<SignedIn | undefined> {
    const session = await provider().Session.get(ctx as never);
    const user = session.accountId ? await users.findById(session.accountId) : undefined;
    if (user?.isActive) return { user, session };
    if (ctx.method !== 'GET') {
      refuse(ctx);
      return undefined;
    }
    await startLogin(ctx, ctx.originalUrl, session.accountId ? 'login' : undefined);
    return undefined;
  }

  /** Where /o/auth sends the browser back: check state, then go where it was going. */
  async function callback(ctx: Context): Promise<void> {
    const saved = ctx.cookies.get(stateCookie, { signed: true });
    ctx.cookies.set(stateCookie, null, cookieOptions);
    let expected: { state?: string; returnTo?: string } = {};
    try {
      expected = saved ? (JSON.parse(saved) as typeof expected) : {};
    } catch {
      expected = {};
    }
    const state = typeof ctx.query['state'] === 'string' ? ctx.query['state'] : '';
    if (!expected.state || expected.state !== state || typeof ctx.query['error'] === 'string') {
      // A stale or foreign answer: start over rather than trust it.
      return startLogin(ctx, `${base}/`, typeof ctx.query['error'] === 'string' ? 'login' : undefined);
    }
    const returnTo = expected.returnTo && ownPath.test(expected.returnTo) ? expected.returnTo : `${base}/`;
    ctx.redirect(returnTo);
  }

  return { signedIn, callback };
}

export type PagesLogin = ReturnType<typeof createPagesLogin>;
