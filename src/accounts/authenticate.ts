import type { AuditLog } from '../audit/audit-log.js';
import type { Metrics } from '../http/metrics.js';
import type { User, UserRepository } from '../repositories/users.js';
import type { LoginThrottle, ThrottleScope } from './login-throttle.js';
import type { PasswordHasher } from './password-hasher.js';

export type AuthResult =
  | { ok: true; user: User }
  | { ok: false; reason: 'invalid' }
  | { ok: false; reason: 'locked'; retryAfter: number };

export interface AuthenticateOptions {
  /** The client's address, for per-IP limits and the audit log. */
  ip: string;
  /** Which door was used (login page, /api/token/, password grant, ...), for the audit log. */
  via: string;
}

/**
 * The one place a username/email and password become a user: the login page (and so the
 * admin login), /api/token/, /users/login/ and the password grant all come through here.
 *
 * - Locked accounts and IPs are refused before any hashing: 429 with Retry-After upstream.
 * - Unknown users cost a dummy hash and count against the login they typed, so neither
 *   timing nor lockouts tell them apart from real accounts; inactive users fail like wrong
 *   passwords.
 * - A hash made with another cost is upgraded on success.
 */
export function createAuthenticator(deps: { users: UserRepository; hasher: PasswordHasher; throttle: LoginThrottle; audit: AuditLog; metrics?: Metrics }) {
  const { users, hasher, throttle, audit, metrics } = deps;

  return async function authenticate(login: unknown, password: unknown, { ip, via }: AuthenticateOptions): Promise<AuthResult> {
    const name = typeof login === 'string' ? login.trim() : '';
    const secret = typeof password === 'string' ? password : '';
    // Looked up whatever the password: skipping the lookup for an empty one would count it
    // against another key than the account's and tell locked accounts from unknown names.
    const user = name ? await users.findByLogin(name) : undefined;
    // Failures of a real account count against it however it was named (username or email).
    const accountKey = user ? `user:${user.id}` : `login:${name.toLowerCase()}`;
    const keys: Array<[ThrottleScope, string]> = [
      ['account', accountKey],
      ['ip', ip],
    ];

    // The attempt is counted before the password is checked (one atomic upsert per key), so
    // parallel guesses cannot all pass a lock check made before any of them had failed.
    const reservation = await throttle.reserve(keys);
    const retryAfter = reservation.retryAfter;
    if (retryAfter > 0) {
      metrics?.logins.inc({ result: 'throttled' });
      await audit.record('login.throttled', { actor: name || 'anonymous', ip, details: { via, retry_after: retryAfter } });
      return { ok: false, reason: 'locked', retryAfter };
    }

    const matches = (await hasher.verify(secret, user?.passwordHash)) && secret !== '';
    if (!user || !matches || !user.isActive) {
      const locked = await throttle.lockReached(keys, reservation.counts);
      metrics?.logins.inc({ result: 'failure' });
      if (locked.length) metrics?.lockouts.inc();
      await audit.record('login.failure', {
        actor: name || 'anonymous',
        ...(user ? { actorUserId: user.id } : {}),
        ip,
        details: { via, reason: !user ? 'unknown_user' : !matches ? 'wrong_password' : 'inactive' },
      });
      if (locked.length) {
        await audit.record('login.lockout', { actor: name || 'anonymous', ip, details: { via, locked } });
      }
      return { ok: false, reason: 'invalid' };
    }

    await throttle.clear('account', accountKey);
    await throttle.release('ip', ip);
    metrics?.logins.inc({ result: 'success' });
    if (hasher.needsRehash(user.passwordHash)) await users.setPasswordHash(user.id, await hasher.hash(secret));
    await users.recordLogin(user.id);
    await audit.record('login.success', { actor: user.username, actorUserId: user.id, ip, details: { via } });
    return { ok: true, user };
  };
}

export type Authenticate = ReturnType<typeof createAuthenticator>;
