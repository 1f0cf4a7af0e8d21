import type { AuditLog } from '../audit/audit-log.js';
import type { User, UserRepository } from '../../storage/users.js';
import type { TwoFactorRepository } from '../../storage/two-factor.js';
import type { LoginThrottle, ThrottleKey } from '../accounts/login-throttle.js';
import { hashRecoveryCode, normalizeRecoveryCode } from './recovery-codes.js';
import type { SecretBox } from './secret-box.js';
import { matchTotpStep } from './totp.js';

/** How a second factor was proven. */
export type SecondFactorMethod = 'totp' | 'recovery_code';

export type CodeCheck<T> = { ok: true; value: T } | { ok: false; reason: 'invalid' } | { ok: false; reason: 'locked'; retryAfter: number };

export interface CodeCheckOptions {
  /** The client's address, for the per-IP limit and the audit log. */
  ip: string;
  /** Which door was used (login page, /api/token/, ...), for the audit log. */
  via: string;
}

export interface SecondFactorDeps {
  repository: TwoFactorRepository;
  /** Opens the sealed TOTP secrets (context: the user id). */
  box: SecretBox;
  /** The login throttle; codes are counted under keys of their own. */
  throttle: LoginThrottle;
  users: UserRepository;
  audit: AuditLog;
  now?: () => number;
}

/** The context a user's TOTP secret is sealed for: it opens on that user's row only. */
export const secretContext = (userId: number) => `two_factor:user:${userId}`;

/**
 * Checks second factors: a TOTP code (accepted once: never for a time step already used) or
 * an unused recovery code (used up by the check). Every check is counted like a password
 * attempt, per account and per client IP, under keys of its own (`totp:`), so guessing the
 * 10^6 codes meets the same lockout as guessing passwords, and a lockout of one never locks
 * the other.
 */
export function createSecondFactor({ repository, box, throttle, users, audit, now = Date.now }: SecondFactorDeps) {
  const actor = (user: User, ip: string) => ({ actor: user.username, actorUserId: user.id, ip });

  /**
   * Runs one code check under the throttle: it takes a slot of each key first (refused without
   * running while locked), a wrong code turns its slots into failures, a right one clears the
   * account's counter and gives the IP its slot back.
   */
  async function throttled<T>(user: User, { ip, via }: CodeCheckOptions, check: () => Promise<T | undefined>): Promise<CodeCheck<T>> {
    const keys: ThrottleKey[] = [
      ['account', `totp:user:${user.id}`],
      ['ip', `totp:${ip}`],
    ];
    const admission = await throttle.begin(keys);
    if (!admission.ok) {
      const details = { via, retry_after: admission.retryAfter, ...(admission.busy ? { busy: true } : {}) };
      await audit.record('two_factor.throttled', { ...actor(user, ip), details });
      return { ok: false, reason: 'locked', retryAfter: admission.retryAfter };
    }
    const value = await throttle.checking(keys, check);
    if (value === undefined) {
      const locked = await throttle.fail(keys);
      await audit.record('two_factor.failure', { ...actor(user, ip), details: { via } });
      if (locked.length) await audit.record('two_factor.lockout', { ...actor(user, ip), details: { via, locked } });
      return { ok: false, reason: 'invalid' };
    }
    await throttle.succeed(keys);
    return { ok: true, value };
  }

  /** The step a TOTP code is accepted for, claimed so it never works again; undefined if refused. */
  async function acceptTotp(user: User, code: string): Promise<number | undefined> {
    const record = await repository.find(user.id);
    if (!record || record.enabledAt === null) return undefined;
    const secret = box.open(record.secretSealed, secretContext(user.id));
    if (secret === undefined) throw new Error(`the two-factor secret of user ${user.id} does not open`);
    const step = matchTotpStep(secret, code, { now: now(), after: record.lastUsedStep });
    return step !== undefined && (await repository.claimStep(user.id, step)) ? step : undefined;
  }

  async function acceptRecoveryCode(user: User, code: string, { ip, via }: CodeCheckOptions): Promise<true | undefined> {
    const normalized = normalizeRecoveryCode(code);
    if (!normalized || !(await repository.isEnabled(user.id))) return undefined;
    if (!(await repository.useRecoveryCode(user.id, hashRecoveryCode(normalized)))) return undefined;
    const remaining = await repository.remainingRecoveryCodes(user.id);
    await audit.record('two_factor.recovery_code_used', { ...actor(user, ip), targetType: 'user', targetId: user.id, details: { via, remaining } });
    return true;
  }

  /** Checks a TOTP code or a recovery code of a user with two-factor authentication enabled. */
  async function verify(user: User, code: unknown, options: CodeCheckOptions): Promise<CodeCheck<SecondFactorMethod>> {
    const typed = typeof code === 'string' ? code.trim().replace(/\s/g, '') : '';
    return throttled(user, options, async () => {
      if ((await acceptTotp(user, typed)) !== undefined) return 'totp' as const;
      if (await acceptRecoveryCode(user, typed, options)) return 'recovery_code' as const;
      return undefined;
    });
  }

  return {
    throttled,
    verify,

    /** True when the user must give a second factor to sign in. */
    enabled: (userId: number) => repository.isEnabled(userId),

    /**
     * The end of a two-step login: checks the code and, when it is good, records the login
     * (last_login, `login.success` with the method) that the password step left open.
     */
    async completeLogin(user: User, code: unknown, options: CodeCheckOptions): Promise<CodeCheck<SecondFactorMethod>> {
      const result = await verify(user, code, options);
      if (result.ok) {
        await users.recordLogin(user.id);
        await audit.record('login.success', { ...actor(user, options.ip), details: { via: options.via, second_factor: result.value } });
      }
      return result;
    },
  };
}

export type SecondFactor = ReturnType<typeof createSecondFactor>;
