import QRCode from 'qrcode';
import type { AuditLog } from '../audit/audit-log.js';
import type { User } from '../../storage/users.js';
import type { TwoFactorRepository } from '../../storage/two-factor.js';
import type { ConfirmIdentity } from '../accounts/confirm-identity.js';
import { DomainError, InvalidInput, TooManyAttempts } from '../errors.js';
import { hashRecoveryCode, newRecoveryCodes, normalizeRecoveryCode } from './recovery-codes.js';
import { secretContext, type CodeCheck, type SecondFactor } from './code-check.js';
import type { SecretBox } from './secret-box.js';
import { matchTotpStep, newTotpSecret, totpKeyUri } from './totp.js';

/** What the account pages and GET /api/me/two-factor/ show. */
export interface TwoFactorStatus {
  enabled: boolean;
  enabled_at: string | null;
  /** An enrollment was started and not confirmed yet. */
  pending: boolean;
  recovery_codes_remaining: number;
}

/** A new enrollment: shown to the person once, to put into an authenticator app. */
export interface Enrollment {
  /** Base32, for typing into an app that cannot scan. */
  secret: string;
  otpauth_uri: string;
  /** The otpauth URI as a QR code, an SVG document made on the server. */
  qr_svg: string;
}

export interface TwoFactorDeps {
  repository: TwoFactorRepository;
  box: SecretBox;
  secondFactor: SecondFactor;
  /** Proof of presence for every change of the settings; throttled like a login. */
  confirmIdentity: ConfirmIdentity;
  audit: AuditLog;
  now?: () => number;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const ALREADY_ENABLED = () => new DomainError('already_enabled');
const NOT_ENABLED = () => new DomainError('not_enabled');
const WRONG_CODE = () => InvalidInput.of('code', 'otp_wrong');

/** The forms and the REST API name the password `password` and the second factor `code`. */
const PROOF_FIELDS = { passwordField: 'password', otpField: 'code' } as const;
/** An empty code is no code: the check then asks for one (and never counts it as a wrong guess). */
const codeGiven = (code: unknown) => (typeof code === 'string' && code.trim() !== '' ? code : undefined);

/** What a person needs to add the secret to an authenticator app: the key, its URI, a QR code. */
async function enrollmentOf(secret: string, user: User): Promise<Enrollment> {
  const uri = totpKeyUri(secret, user.username);
  const svg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return { secret, otpauth_uri: uri, qr_svg: svg };
}

/** TooManyAttempts for a locked check, the field error for a wrong one; returns the value of a good one. */
function settle<T>(check: CodeCheck<T>, wrong: () => DomainError): T {
  if (check.ok) return check.value;
  if (check.reason === 'locked') throw new TooManyAttempts(check.retryAfter);
  throw wrong();
}

/**
 * Two-factor authentication for one's own account (REST and, later, the account pages) and
 * its reset by staff: enroll with a new TOTP secret (QR code), confirm with a code to enable
 * it and receive 10 recovery codes (shown once, stored hashed), regenerate them, disable.
 * Every code check goes through the second-factor throttle.
 */
export function createTwoFactorService({ repository, box, secondFactor, confirmIdentity, audit, now = Date.now }: TwoFactorDeps) {
  const actor = (user: User, ip?: string) => ({ actor: user.username, actorUserId: user.id, ...(ip ? { ip } : {}) });

  /** New recovery codes: the plain codes for the person, the hashes for the database. */
  function recoveryCodes() {
    const codes = newRecoveryCodes();
    return { codes, hashes: codes.map((code) => hashRecoveryCode(normalizeRecoveryCode(code)!)) };
  }

  return {
    /** The same check the login uses: a TOTP code or an unused recovery code. */
    verify: secondFactor.verify,

    async status(user: User): Promise<TwoFactorStatus> {
      const record = await repository.find(user.id);
      const enabled = record?.enabledAt != null;
      return {
        enabled,
        enabled_at: iso(record?.enabledAt ?? null),
        pending: record !== undefined && !enabled,
        recovery_codes_remaining: enabled ? await repository.remainingRecoveryCodes(user.id) : 0,
      };
    },

    /**
     * Starts enrollment with a new secret (replacing an unconfirmed one) once the current
     * password proves it is the person: a stolen session must not put its own authenticator
     * on the account. Nothing changes for sign-in until a code confirms it. 409 when
     * two-factor authentication is already on.
     */
    async beginEnrollment(user: User, proof: { password: unknown }, { ip }: { ip: string }): Promise<Enrollment> {
      if (await repository.isEnabled(user.id)) throw ALREADY_ENABLED();
      await confirmIdentity(user, { password: proof.password }, { ip, via: 'two_factor_enroll', passwordField: 'password' });
      const secret = newTotpSecret();
      if (!(await repository.startPending(user.id, box.seal(secret, secretContext(user.id)), now()))) {
        throw ALREADY_ENABLED();
      }
      return enrollmentOf(secret, user);
    },

    /**
     * The enrollment started and not confirmed yet, shown again (the account page after a
     * mistyped code, or a reload): its secret is the person's own. Undefined when there is none.
     */
    async pendingEnrollment(user: User): Promise<Enrollment | undefined> {
      const record = await repository.find(user.id);
      if (!record || record.enabledAt != null) return undefined;
      const secret = box.open(record.secretSealed, secretContext(user.id));
      return secret === undefined ? undefined : enrollmentOf(secret, user);
    },

    /**
     * Confirms the pending enrollment with a code from the app: two-factor is on from now,
     * and the 10 recovery codes returned here are never shown again.
     */
    async confirmEnrollment(user: User, code: unknown, { ip }: { ip: string }): Promise<{ recovery_codes: string[] }> {
      const record = await repository.find(user.id);
      if (record?.enabledAt != null) throw new DomainError('already_confirmed');
      if (!record) throw new DomainError('no_enrollment');
      const secret = box.open(record.secretSealed, secretContext(user.id));
      if (secret === undefined) throw new Error(`the pending two-factor secret of user ${user.id} does not open`);
      const typed = typeof code === 'string' ? code.replace(/\s/g, '') : '';
      const step = settle(
        await secondFactor.throttled(user, { ip, via: 'two_factor_confirm' }, async () => matchTotpStep(secret, typed, { now: now(), after: null })),
        WRONG_CODE,
      );
      const { codes, hashes } = recoveryCodes();
      // The accepted step is recorded, so the code that confirmed cannot also sign in.
      if (!(await repository.enable(user.id, record.secretSealed, step, hashes, now()))) {
        throw new DomainError('enrollment_changed');
      }
      await audit.record('two_factor.enabled', { ...actor(user, ip), targetType: 'user', targetId: user.id });
      return { recovery_codes: codes };
    },

    /** New recovery codes for the password and a code (TOTP or recovery); the old ones stop working. */
    async regenerateRecoveryCodes(user: User, proof: { password: unknown; code: unknown }, { ip }: { ip: string }): Promise<{ recovery_codes: string[] }> {
      if (!(await repository.isEnabled(user.id))) throw NOT_ENABLED();
      await confirmIdentity(user, { password: proof.password, otp: codeGiven(proof.code) }, { ip, via: 'recovery_codes_regenerate', ...PROOF_FIELDS });
      const { codes, hashes } = recoveryCodes();
      if (!(await repository.replaceRecoveryCodes(user.id, hashes, now()))) throw NOT_ENABLED();
      await audit.record('two_factor.recovery_codes_regenerated', { ...actor(user, ip), targetType: 'user', targetId: user.id });
      return { recovery_codes: codes };
    },

    /**
     * Turns two-factor off, forgetting the secret and the recovery codes. Needs the current
     * password and a code (a wrong password is refused before the code is looked at, so it
     * cannot use up a recovery code).
     */
    async disable(user: User, proof: { password: unknown; code: unknown }, { ip }: { ip: string }): Promise<void> {
      if (!(await repository.isEnabled(user.id))) throw NOT_ENABLED();
      await confirmIdentity(user, { password: proof.password, otp: codeGiven(proof.code) }, { ip, via: 'two_factor_disable', ...PROOF_FIELDS });
      await repository.remove(user.id);
      await audit.record('two_factor.disabled', { ...actor(user, ip), targetType: 'user', targetId: user.id });
    },

    /**
     * Staff turn off another person's two-factor (a lost phone and no recovery codes). Only a
     * superuser may do it to a superuser. Says whether the user had two-factor at all.
     */
    async adminReset(admin: User, target: User, { ip }: { ip: string }): Promise<boolean> {
      if (!admin.isStaff) throw new DomainError('two_factor_reset_staff_only');
      // Your own second factor is yours to turn off with its proof (password and a code), in the account center.
      if (admin.id === target.id) throw new DomainError('two_factor_reset_own');
      if (target.isSuperuser && !admin.isSuperuser) {
        throw new DomainError('two_factor_reset_superuser');
      }
      const hadIt = await repository.isEnabled(target.id);
      await repository.remove(target.id);
      await audit.record('two_factor.reset', { ...actor(admin, ip), targetType: 'user', targetId: target.id, details: { was_enabled: hadIt } });
      return hadIt;
    },
  };
}

export type TwoFactorService = ReturnType<typeof createTwoFactorService>;
