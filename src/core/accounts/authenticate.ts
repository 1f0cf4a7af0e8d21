import type { AuditLog } from '../audit/audit-log.js';
import { usernameKey } from '../../storage/identity-keys.js';
import type { Metrics } from '../../observability/metrics.js';
import type { User, UserRepository } from '../../storage/users.js';
import type { LoginThrottle, ThrottleKey } from './login-throttle.js';
import type { PasswordHasher } from './password-hasher.js';
import type { SecondFactor } from '../two-factor/code-check.js';

export type AuthResult =
  /** `secondFactorPending`: the password was right, the code is still to come (deferred mode only). */
  | { ok: true; user: User; secondFactorPending: boolean }
  | { ok: false; reason: 'invalid' }
  | { ok: false; reason: 'locked'; retryAfter: number }
  /** The password was right, but the account has two-factor authentication and no code came. */
  | { ok: false; reason: 'second_factor_required' }
  /** The password was right, the code was not. */
  | { ok: false; reason: 'second_factor_invalid' };

export interface AuthenticateOptions {
  /** The client's address, for per-IP limits and the audit log. */
  ip: string;
  /** Which door was used (login page, /api/token/, password grant, ...), for the audit log. */
  via: string;
  /**
   * What to do about two-factor authentication; every caller must say, so no door can forget
   * it. `{ otp }`: the code came with the password (/api/token/, /users/login/, the password
   * grant) and is checked here. `'deferred'`: the caller asks for the code itself afterwards
   * (the login page's second step), or only re-checks the password of a person already
   * signed in (password change); a user with two-factor gets `secondFactorPending: true`.
   */
  secondFactor: 'deferred' | { otp: unknown };
  /**
   * A person already signed in proving it is them before an account change: throttled and
   * audited like a login, but no login is recorded (last_login stays; the audit event is
   * `identity.confirmed`).
   */
  reauthentication?: boolean;
}

/**
 * The one place a username/email and password become a user: the login page (and so the
 * admin login), /api/token/, /users/login/ and the password grant all come through here.
 *
 * - Locked accounts and IPs are refused before any hashing: 429 with Retry-After upstream.
 *   A check waits (briefly) while all the slots its limits leave are held by checks in
 *   flight, so a burst of right passwords is slowed, never refused as if guessed.
 * - Unknown users cost a dummy hash and count against the login they typed, so neither
 *   timing nor lockouts tell them apart from real accounts; inactive users fail like wrong
 *   passwords.
 * - A hash made with another cost, or imported from Django in another format, is upgraded on
 *   success (the latter audited as `password.upgraded`).
 * - Accounts with two-factor authentication need a code too (see `secondFactor`): the login
 *   is recorded (last_login, `login.success`) only once the code is good; the password step
 *   alone is `login.password_verified`.
 */
/** The longest login that can name an account: an email address (usernames have 150). */
const MAX_LOGIN_LENGTH = 254;
/** What an impossible login is counted and audited as. */
const INVALID_LOGIN = '(invalid login)';

export function createAuthenticator(deps: {
  users: UserRepository;
  hasher: PasswordHasher;
  throttle: LoginThrottle;
  audit: AuditLog;
  secondFactor: SecondFactor;
  metrics?: Metrics;
}) {
  const { users, hasher, throttle, audit, secondFactor, metrics } = deps;

  return async function authenticate(login: unknown, password: unknown, options: AuthenticateOptions): Promise<AuthResult> {
    const { ip, via } = options;
    const typed = typeof login === 'string' ? login.trim() : '';
    // Longer than any username or address, or with control characters (a NUL would fail the
    // query on PostgreSQL): no account has it. It fails like an unknown name, under one
    // throttle key and audit label of its own, so nothing unbounded is stored.
    const impossible = typed.length > MAX_LOGIN_LENGTH || /\p{Cc}/u.test(typed);
    const name = impossible ? INVALID_LOGIN : typed;
    const secret = typeof password === 'string' ? password : '';
    // Looked up whatever the password: skipping the lookup for an empty one would count it
    // against another key than the account's and tell locked accounts from unknown names.
    const user = name && !impossible ? await users.findByLogin(name) : undefined;
    // Failures of a real account count against it however it was named (username or email);
    // unknown names by their key, so "Ärger" and "ärger" are one name here too.
    const accountKey = user ? `user:${user.id}` : `login:${usernameKey(name).slice(0, 300)}`;
    const keys: ThrottleKey[] = [
      ['account', accountKey],
      ['ip', ip],
    ];

    // A slot of each key is taken before the password is checked, and a key has only as
    // many as its limit less its failures: parallel guesses cannot all pass a lock check made
    // before any of them had failed, while right passwords wait for a slot, never lock.
    const admission = await throttle.begin(keys);
    if (!admission.ok) {
      const { retryAfter } = admission;
      metrics?.logins.inc({ result: 'throttled' });
      const details = { via, retry_after: retryAfter, ...(admission.busy ? { busy: true } : {}) };
      await audit.record('login.throttled', { actor: name || 'anonymous', ip, details });
      return { ok: false, reason: 'locked', retryAfter };
    }

    const matches = (await throttle.checking(keys, () => hasher.verify(secret, user?.passwordHash))) && secret !== '';
    if (!user || !matches || !user.isActive) {
      const locked = await throttle.fail(keys);
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

    await throttle.succeed(keys);
    metrics?.logins.inc({ result: 'success' });
    if (hasher.needsRehash(user.passwordHash)) {
      const before = hasher.algorithmOf(user.passwordHash);
      await users.setPasswordHash(user.id, await hasher.hash(secret));
      // A hash imported from Django in another format is gone from here on: worth a record.
      if (before !== 'bcrypt_sha256') {
        await audit.record('password.upgraded', { actor: user.username, actorUserId: user.id, ip, details: { via, from: before } });
      }
    }

    if (await secondFactor.enabled(user.id)) {
      const actor = { actor: user.username, actorUserId: user.id, ip };
      if (options.secondFactor === 'deferred') {
        await audit.record('login.password_verified', { ...actor, details: { via, second_factor: 'pending' } });
        return { ok: true, user, secondFactorPending: true };
      }
      const otp = options.secondFactor.otp;
      if (otp === undefined || otp === null || otp === '') {
        await audit.record('login.password_verified', { ...actor, details: { via, second_factor: 'missing' } });
        return { ok: false, reason: 'second_factor_required' };
      }
      const checked = options.reauthentication ? await secondFactor.verify(user, otp, { ip, via }) : await secondFactor.completeLogin(user, otp, { ip, via });
      if (checked.ok && options.reauthentication) await audit.record('identity.confirmed', { ...actor, details: { via, second_factor: checked.value } });
      if (checked.ok) return { ok: true, user, secondFactorPending: false };
      return checked.reason === 'locked' ? checked : { ok: false, reason: 'second_factor_invalid' };
    }

    if (options.reauthentication) {
      await audit.record('identity.confirmed', { actor: user.username, actorUserId: user.id, ip, details: { via } });
      return { ok: true, user, secondFactorPending: false };
    }
    await users.recordLogin(user.id);
    await audit.record('login.success', { actor: user.username, actorUserId: user.id, ip, details: { via } });
    return { ok: true, user, secondFactorPending: false };
  };
}

export type Authenticate = ReturnType<typeof createAuthenticator>;
