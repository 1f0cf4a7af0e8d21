import type { Knex } from 'knex';
import { normalizeUsername } from '../../storage/identity-keys.js';
import type { ApiTokens } from '../tokens/api-tokens.js';
import type { AuditLog } from '../audit/audit-log.js';
import { DomainError, fieldCollector } from '../errors.js';
import { deleteAccountSession, findAccountGrant, listAccountPayloads, revokeAccountExcept, revokeGrant } from '../../storage/oidc-payloads.js';
import type { ClientRepository } from '../../storage/clients.js';
import type { User, UserRepository } from '../../storage/users.js';
import type { ConfirmIdentity } from './confirm-identity.js';
import type { PasswordHasher } from './password-hasher.js';
import { passwordProblem } from './password-policy.js';
import type { UserService } from './user-service.js';

/** An application the person has allowed, as the account pages and /api/me/grants/ show it. */
export interface ConnectedApp {
  id: string;
  client_id: string;
  client_name: string;
  scopes: string[];
  /** API resources (RFC 8707) and the scopes granted for each. */
  resources: Record<string, string[]>;
  granted_at: string;
  expires_at: string | null;
}

/** A browser login session, identified by its public uid (never the cookie value, its id). */
export interface LoginSession {
  id: string;
  signed_in_at: string;
  expires_at: string | null;
  /** The applications signed in through this session. */
  applications: Array<{ client_id: string; client_name: string }>;
  /** How the person proved who they are (amr), e.g. ["pwd"]. */
  methods: string[];
  /** The browser in words ("Firefox on Linux") and its IP, as of its sign-in or last use; null when unknown. */
  browser: string | null;
  ip: string | null;
  current: boolean;
}

/** What a password change leaves alone: the caller's own session and grant. */
export interface Keep {
  sessionUid?: string;
  grantId?: string;
}

const iso = (seconds: unknown) => (typeof seconds === 'number' ? new Date(seconds * 1000).toISOString() : null);
const words = (scope: unknown) => (typeof scope === 'string' ? scope.split(' ').filter(Boolean) : []);

/**
 * What a signed-in person may do to their own account, for the account pages and /api/me/:
 * see and revoke connected applications, see and end login sessions, change the password
 * (the current one required, throttled like a login) ending every other session.
 */
export function createSelfService(deps: {
  knex: Knex;
  users: UserRepository;
  clients: ClientRepository;
  hasher: PasswordHasher;
  confirmIdentity: ConfirmIdentity;
  apiTokens: ApiTokens;
  audit: AuditLog;
  userService: UserService;
}) {
  const { knex, users, clients, hasher, confirmIdentity, apiTokens, audit, userService } = deps;

  /**
   * Live rows of one model for one account. A row is kept a little past its `exp` (the
   * provider's clock tolerance, so it can tell expired from unknown), but is no longer valid.
   */
  async function rowsOf(model: 'Grant' | 'Session', userId: number): Promise<Array<{ id: string; payload: Record<string, unknown> }>> {
    const now = Math.floor(Date.now() / 1000);
    return (await listAccountPayloads(knex, model, String(userId))).filter(({ payload }) => typeof payload['exp'] !== 'number' || payload['exp'] > now);
  }

  /** Client names by id, looked up once per listing; a deleted client keeps its id as name. */
  async function namer(): Promise<(clientId: string) => string> {
    const names = new Map((await clients.list()).map((c) => [c.clientId, c.name]));
    return (clientId) => names.get(clientId) ?? clientId;
  }

  const actor = (user: User, ip?: string) => ({ actor: user.username, actorUserId: user.id, ...(ip ? { ip } : {}) });

  /**
   * Who the audit log names for a revocation: the person, or a staff member acting on their
   * account from the admin pages (the target then says whose it was).
   */
  const actingOn = (user: User, ip?: string, staff?: User) =>
    staff ? { entry: actor(staff, ip), via: 'admin', user_id: user.id } : { entry: actor(user, ip), via: 'self-service' };

  return {
    async connectedApps(user: User): Promise<ConnectedApp[]> {
      const name = await namer();
      const grants = await rowsOf('Grant', user.id);
      return grants
        .map(({ id, payload }) => {
          const clientId = String(payload['clientId'] ?? '');
          const resources = Object.fromEntries(
            Object.entries((payload['resources'] as Record<string, unknown> | undefined) ?? {}).map(([indicator, scope]) => [indicator, words(scope)]),
          );
          return {
            id,
            client_id: clientId,
            client_name: name(clientId),
            scopes: words((payload['openid'] as { scope?: unknown } | undefined)?.scope),
            resources,
            granted_at: iso(payload['iat']) ?? new Date(0).toISOString(),
            expires_at: iso(payload['exp']),
          };
        })
        .sort((a, b) => b.granted_at.localeCompare(a.granted_at) || a.id.localeCompare(b.id));
    },

    /**
     * Revokes one of the person's grants with every token and code issued under it; `staff`
     * when a staff member does it for them from the admin pages.
     */
    async revokeApp(user: User, grantId: string, ip?: string, staff?: User): Promise<void> {
      const grant = (await findAccountGrant(knex, String(user.id), grantId)) as { clientId?: string } | undefined;
      if (!grant) throw new DomainError('app_not_found');
      await revokeGrant(knex, grantId);
      const clientId = grant.clientId ?? null;
      const { entry, ...by } = actingOn(user, ip, staff);
      await audit.record('grant.revoked', { ...entry, targetType: 'grant', targetId: grantId, details: { client_id: clientId, ...by } });
    },

    async sessions(user: User, currentUid?: string): Promise<LoginSession[]> {
      const name = await namer();
      const rows = await rowsOf('Session', user.id);
      return rows
        .filter(({ payload }) => typeof payload['uid'] === 'string')
        .map(({ payload }) => {
          const authorizations = (payload['authorizations'] as Record<string, unknown> | undefined) ?? {};
          const device = (payload['device'] as { browser?: unknown; ip?: unknown } | undefined) ?? {};
          return {
            id: String(payload['uid']),
            signed_in_at: iso(payload['loginTs']) ?? iso(payload['iat']) ?? new Date(0).toISOString(),
            expires_at: iso(payload['exp']),
            applications: Object.keys(authorizations).map((clientId) => ({ client_id: clientId, client_name: name(clientId) })),
            methods: Array.isArray(payload['amr']) ? payload['amr'].map(String) : [],
            browser: typeof device.browser === 'string' ? device.browser : null,
            ip: typeof device.ip === 'string' ? device.ip : null,
            current: payload['uid'] === currentUid,
          };
        })
        .sort((a, b) => b.signed_in_at.localeCompare(a.signed_in_at) || a.id.localeCompare(b.id));
    },

    /**
     * Ends one login session. Tokens issued under it without offline_access die with it (the
     * provider checks the session on every use); offline grants stay until revoked. `staff`
     * when a staff member ends it from the admin pages.
     */
    async endSession(user: User, uid: string, ip?: string, staff?: User): Promise<void> {
      const ended = await deleteAccountSession(knex, String(user.id), uid);
      if (!ended) throw new DomainError('session_not_found');
      const { entry, via } = actingOn(user, ip, staff);
      await audit.record('session.ended', { ...entry, targetType: 'user', targetId: user.id, details: { via } });
    },

    /**
     * Changes the person's password. The current password is checked through the login
     * throttle (a stolen session cannot guess it faster than a login could); afterwards every
     * session, grant and token of the person ends except `keep` (the caller's own), and all
     * API refresh tokens are revoked.
     * @returns the user as stored now.
     */
    async changePassword(user: User, body: Record<string, unknown>, { ip, keep = {} }: { ip: string; keep?: Keep }): Promise<User> {
      const current = body['current_password'];
      const next = body['new_password'];
      const problems = fieldCollector();
      if (typeof current !== 'string' || current === '') problems.add('current_password', 'required');
      if (typeof next !== 'string' || next === '') problems.add('new_password', 'required');
      else {
        const problem = passwordProblem(next);
        if (problem) problems.add('new_password', problem);
        else if (next === current) problems.add('new_password', 'password_same');
      }
      for (const key of Object.keys(body)) {
        if (key !== 'current_password' && key !== 'new_password' && key !== 'otp') problems.add(key, 'unknown_field');
      }
      problems.throwIfAny();
      await confirmIdentity(user, { password: current, otp: body['otp'] }, { ip, via: 'password_change' });

      const updated = await users.update(user.id, { passwordHash: await hasher.hash(next as string) });
      if (!updated) throw new DomainError('user_not_found');
      await revokeAccountExcept(knex, String(user.id), keep);
      await apiTokens.revokeUser(user.id);
      await audit.record('user.password_changed', { ...actor(user, ip), targetType: 'user', targetId: user.id, details: { self: true, via: 'self-service' } });
      return updated;
    },

    /**
     * Deletes the person's own account once they have typed its username and proved the
     * password and second factor (throttled like a login). Through the user service: every session, grant and
     * token ends, the audit log records it, and the last active superuser is refused.
     */
    async deleteAccount(user: User, body: { username: unknown; password: unknown; otp?: unknown }, { ip }: { ip: string }): Promise<void> {
      const problems = fieldCollector();
      // Compared in the NFKC form usernames are stored in: a decomposed "ë" is the one shown.
      if (typeof body.username !== 'string' || normalizeUsername(body.username.trim()) !== user.username) problems.add('username', 'confirm_username');
      if (typeof body.password !== 'string' || body.password === '') problems.add('password', 'required');
      problems.throwIfAny();
      await confirmIdentity(user, { password: body.password, otp: body.otp }, { ip, via: 'account_delete', passwordField: 'password' });
      await userService.remove({ user, ip }, user, { confirmed: true });
    },
  };
}

export type SelfService = ReturnType<typeof createSelfService>;
