import type { Context, Next } from 'koa';
import type Provider from 'oidc-provider';
import type { AuditActor } from '../../core/audit/audit-log.js';
import { ADMIN_CLIENT_ID, ADMIN_PAGES, createPagesLogin, ensurePagesClient } from '../../oidc/first-party-pages.js';
import type { ClientRepository } from '../../storage/clients.js';
import type { User, UserRepository } from '../../storage/users.js';

/**
 * The admin pages sign staff in through our own provider, as Keycloak's admin console does
 * (see oidc/first-party-pages.ts): same login page, and signing out there ends both.
 */
export { ADMIN_CLIENT_ID };

/** Creates the admin pages' client on first start (its redirect URIs are each process's own). */
export async function ensureAdminClient(clients: ClientRepository): Promise<void> {
  await ensurePagesClient(clients, ADMIN_PAGES);
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

function loginRequired(ctx: Context): void {
  ctx.status = 401;
  ctx.body = { error: 'login_required', error_description: 'Sign in again.' };
}

export function createAdminAuth({ provider, users, publicUrl, secureCookies, forbidden }: AdminAuthDeps) {
  const login = createPagesLogin({ provider, users, publicUrl, secureCookies, client: ADMIN_PAGES });

  /** Only staff pass; others see 403, people not signed in go to the login page (GET) or get 401. */
  async function requireStaff(ctx: Context, next: Next): Promise<void> {
    const signedIn = await login.signedIn(ctx, loginRequired);
    if (!signedIn) return;
    if (!signedIn.user.isStaff) return forbidden(ctx, signedIn.user);
    ctx.state['admin'] = signedIn.user;
    ctx.set('Cache-Control', 'no-store');
    await next();
  }

  return { requireStaff, callback: login.callback };
}
