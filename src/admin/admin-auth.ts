import { randomBytes } from 'node:crypto';
import { UnsecuredJWT } from 'jose';
import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { AuditActor } from '../audit/audit-log.js';
import type { ClientRepository } from '../repositories/clients.js';
import type { User, UserRepository } from '../repositories/users.js';

/**
 * The admin pages are a first-party relying party of our own provider (as Keycloak's admin
 * console is): they ask /o/auth for a login session with response_type=none, then read that
 * session. Staff therefore sign in on the same login page, and signing out there ends both.
 */
export const ADMIN_CLIENT_ID = 'latchkey-admin';
const STATE_COOKIE = 'lk.admin_state';
/** Seconds a pushed admin authorization request stays usable (the library's PAR maximum). */
const PAR_TTL = 60;

/** Creates or updates the admin client so its redirect URI follows PUBLIC_URL. */
export async function ensureAdminClient(clients: ClientRepository, publicUrl: string): Promise<void> {
  const name = 'Latchkey administration';
  const metadata = {
    client_name: name,
    redirect_uris: [`${publicUrl}/admin/callback`],
    post_logout_redirect_uris: [`${publicUrl}/admin/`],
    grant_types: [],
    response_types: ['none'],
    token_endpoint_auth_method: 'none',
    scope: 'openid',
  };
  const existing = await clients.find(ADMIN_CLIENT_ID);
  if (existing) {
    if (JSON.stringify(existing.metadata) !== JSON.stringify(metadata)) await clients.update(ADMIN_CLIENT_ID, name, metadata);
    return;
  }
  try {
    await clients.insertDraft({ clientId: ADMIN_CLIENT_ID, clientSecret: null, name, metadata });
  } catch (error) {
    if (!(await clients.find(ADMIN_CLIENT_ID))) throw error;
  }
}

export interface AdminAuthDeps {
  provider: () => Provider;
  users: UserRepository;
  publicUrl: string;
  secureCookies: boolean;
  /** Renders the 403 page for signed-in people who are not staff. */
  forbidden: (ctx: Context, user: User) => void;
}

/** The staff member behind this request (set by {@link createAdminAuth}'s middleware). */
export function adminOf(ctx: Context): User {
  return ctx.state['admin'] as User;
}

/** The staff member behind this request, as the audit log names actors. */
export function auditActorOf(ctx: Context): AuditActor {
  const admin = adminOf(ctx);
  return { label: admin.username, userId: admin.id, ip: ctx.ip };
}

export function createAdminAuth({ provider, users, publicUrl, secureCookies, forbidden }: AdminAuthDeps) {
  const cookieOptions = { signed: true, httpOnly: true, sameSite: 'lax' as const, secure: secureCookies, path: '/admin', maxAge: 10 * 60 * 1000 };

  /**
   * The /o/auth URL for these parameters. When every client must use PAR (REQUIRE_PAR), they
   * are pushed in-process, stored as the PAR endpoint stores a public client's request.
   */
  async function authorizationUrl(params: Record<string, string>): Promise<URL> {
    const url = new URL(`${publicUrl}/o/auth`);
    const p = provider();
    if (!(await p.Client.find(ADMIN_CLIENT_ID))?.requirePushedAuthorizationRequests) {
      url.search = new URLSearchParams(params).toString();
      return url;
    }
    const now = Math.floor(Date.now() / 1000);
    const request = new UnsecuredJWT(params).setIssuer(ADMIN_CLIENT_ID).setAudience(p.issuer).setIssuedAt(now).setNotBefore(now).setExpirationTime(now + PAR_TTL).encode();
    const id = await new p.PushedAuthorizationRequest({ request }).save(PAR_TTL);
    url.search = new URLSearchParams({ client_id: ADMIN_CLIENT_ID, request_uri: `urn:ietf:params:oauth:request_uri:${id}` }).toString();
    return url;
  }

  /** Sends the browser to the login page, remembering where it was going. */
  async function startLogin(ctx: Context, returnTo: string, prompt?: string): Promise<void> {
    const state = randomBytes(24).toString('base64url');
    ctx.cookies.set(STATE_COOKIE, JSON.stringify({ state, returnTo }), cookieOptions);
    const url = await authorizationUrl({
      client_id: ADMIN_CLIENT_ID,
      response_type: 'none',
      redirect_uri: `${publicUrl}/admin/callback`,
      scope: 'openid',
      state,
      ...(prompt ? { prompt } : {}),
    });
    ctx.redirect(url.href);
  }

  /** Only staff pass; others see 403, people not signed in go to the login page. */
  async function requireStaff(ctx: Context, next: Next): Promise<void> {
    const session = await provider().Session.get(ctx as never);
    const user = session.accountId ? await users.findById(session.accountId) : undefined;
    if (!user || !user.isActive) {
      if (ctx.method !== 'GET') {
        ctx.status = 401;
        ctx.body = { error: 'login_required', error_description: 'Sign in again.' };
        return;
      }
      return startLogin(ctx, ctx.originalUrl, session.accountId ? 'login' : undefined);
    }
    if (!user.isStaff) return forbidden(ctx, user);
    ctx.state['admin'] = user;
    ctx.set('Cache-Control', 'no-store');
    await next();
  }

  /** Where /o/auth sends the browser back: check state, then go where it was going. */
  async function callback(ctx: Context): Promise<void> {
    const saved = ctx.cookies.get(STATE_COOKIE, { signed: true });
    ctx.cookies.set(STATE_COOKIE, null, cookieOptions);
    let expected: { state?: string; returnTo?: string } = {};
    try {
      expected = saved ? (JSON.parse(saved) as typeof expected) : {};
    } catch {
      expected = {};
    }
    const state = typeof ctx.query['state'] === 'string' ? ctx.query['state'] : '';
    if (!expected.state || expected.state !== state || typeof ctx.query['error'] === 'string') {
      // A stale or foreign answer: start over rather than trust it.
      return startLogin(ctx, '/admin/', typeof ctx.query['error'] === 'string' ? 'login' : undefined);
    }
    const returnTo = expected.returnTo && /^\/admin(\/|$|\?)/.test(expected.returnTo) ? expected.returnTo : '/admin/';
    ctx.redirect(returnTo);
  }

  return { requireStaff, callback };
}
