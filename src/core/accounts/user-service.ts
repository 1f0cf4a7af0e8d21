import type { Knex } from 'knex';
import type { ApiTokens } from '../tokens/api-tokens.js';
import { actorEntry, type AuditActor, type AuditLog } from '../audit/audit-log.js';
import { DomainError, fieldCollector, fieldProblem, InvalidInput, LastSuperuser } from '../errors.js';
import { revokeAccount } from '../../storage/oidc-payloads.js';
import { normalizeUsername } from '../../storage/identity-keys.js';
import { DuplicateUserError, normalizeEmail, type User, type UserChanges, type UserRepository } from '../../storage/users.js';
import type { ConfirmIdentity } from './confirm-identity.js';
import type { PasswordHasher } from './password-hasher.js';
import { passwordProblem } from './password-policy.js';
import { emailProblem, nameProblem, usernameProblem } from './user-input.js';

/** Who is asking: the rules differ for staff, superusers and the user themself. */
export interface Actor {
  user: User | null;
  /** The caller's address, for the audit log. */
  ip?: string;
}

function auditActor(actor: Actor) {
  return actorEntry({
    label: actor.user?.username ?? 'anonymous',
    ...(actor.user ? { userId: actor.user.id } : {}),
    ...(actor.ip ? { ip: actor.ip } : {}),
  });
}

/** Fields anyone may write to their own account (`current_password` and `otp` prove it is them). */
const SELF_FIELDS = ['username', 'email', 'first_name', 'last_name', 'password', 'current_password', 'otp'] as const;
/** Fields only staff may write (is_superuser: only superusers). */
const PRIVILEGED_FIELDS = ['is_active', 'is_staff', 'is_superuser'] as const;
/** Never writable through the API; a non-staff caller trying is refused (fields_forbidden), staff get invalid_input. */
const READ_ONLY_FIELDS = ['id', 'date_joined', 'last_login', 'updated_at', 'password_hash', 'email_verified'] as const;

const has = (body: Record<string, unknown>, key: string) => Object.prototype.hasOwnProperty.call(body, key);

function conflict(error: unknown): never {
  if (error instanceof DuplicateUserError) {
    // Per field too, as Django REST framework lists a unique field's refusal.
    const code = error.field === 'email' ? 'email_taken' : error.lookalike ? 'username_lookalike' : 'username_taken';
    throw new DomainError(code, {}, { fields: { [error.field]: [fieldProblem(code)] } });
  }
  throw error;
}

/** The API representation of a user: never any password or hash field. */
export function userJson(user: User) {
  return {
    id: user.id,
    username: user.username,
    email: user.email ?? '',
    first_name: user.firstName,
    last_name: user.lastName,
    is_active: user.isActive,
    is_staff: user.isStaff,
    is_superuser: user.isSuperuser,
    email_verified: user.emailVerified,
    /** An address asked for and not verified yet; `email` stays in use until then. */
    pending_email: user.pendingEmail,
    date_joined: new Date(user.dateJoined).toISOString(),
    last_login: user.lastLogin === null ? null : new Date(user.lastLogin).toISOString(),
    updated_at: new Date(user.updatedAt).toISOString(),
  };
}

/**
 * What a userinfo token (an app's sign-in token, not one for the API) may read of its user
 * at /auth/me/: as at /o/me, the id always, names with `profile`, the address with `email`;
 * never the account's flags.
 */
export function userJsonForScopes(user: User, scopes: ReadonlySet<string>) {
  const full = userJson(user);
  return {
    id: full.id,
    ...(scopes.has('profile') ? { username: full.username, first_name: full.first_name, last_name: full.last_name, updated_at: full.updated_at } : {}),
    ...(scopes.has('email') ? { email: full.email, email_verified: full.email_verified } : {}),
  };
}

export interface UserServiceDeps {
  knex: Knex;
  audit: AuditLog;
  users: UserRepository;
  hasher: PasswordHasher;
  apiTokens: ApiTokens;
  /**
   * Called (without waiting) when an account gets an address nobody has verified yet: a
   * self-registration with an email, or a changed email. Sends the verification mail.
   */
  onUnverifiedEmail?: (user: User, reason: 'registered' | 'email_changed') => void;
  /** Proof of presence (password and second factor) for a person changing their own account. */
  confirmIdentity: ConfirmIdentity;
  /** A person's own change of address: allowed how often, and who is told. */
  emailChanges?: EmailChanges;
}

/** What a person's change of their own address needs besides storing it as pending. */
export interface EmailChanges {
  /** Counts the request; throws TooManyAttempts past the limit (mail to any address is a cost to someone). */
  allow(user: User, address: string, ip: string | undefined): Promise<void>;
  /** Mails the verification link to the new address and a notice to the old one (in the background). */
  announce(user: User, previous: string | null): void;
}

/** Options of a change a person makes to their own account after proving it is them elsewhere. */
export interface Confirmed {
  /** The caller already checked the password (and second factor), e.g. the delete page. */
  confirmed?: boolean;
}

/**
 * Account rules shared by the REST API, the legacy endpoints and (later) the admin pages:
 * validation with per-field problems, who may set what (mass assignment), uniqueness,
 * and revocation of every session and token when a user is deleted, deactivated or changes
 * password.
 */
export function createUserService({ knex, audit, users, hasher, apiTokens, onUnverifiedEmail, confirmIdentity, emailChanges }: UserServiceDeps) {
  /** Refuses fields the actor may not write: fields_forbidden for privilege, invalid_input for unknown/read-only. */
  function checkWritable(actor: Actor, body: Record<string, unknown>): void {
    const staff = actor.user?.isStaff === true;
    const forbidden: string[] = [];
    const unknown: string[] = [];
    for (const key of Object.keys(body)) {
      if ((READ_ONLY_FIELDS as readonly string[]).includes(key)) {
        if (staff) unknown.push(key);
        else forbidden.push(key);
      } else if ((PRIVILEGED_FIELDS as readonly string[]).includes(key)) {
        if (!staff || (key === 'is_superuser' && !actor.user?.isSuperuser)) forbidden.push(key);
      } else if (!(SELF_FIELDS as readonly string[]).includes(key)) {
        unknown.push(key);
      }
    }
    if (forbidden.length) {
      throw new DomainError('fields_forbidden', { fields: forbidden.join(', ') });
    }
    if (unknown.length) {
      throw new InvalidInput(Object.fromEntries(unknown.map((k) => [k, [fieldProblem('read_only_or_unknown')]])));
    }
  }

  /** Validates the writable fields that are present; `required` must be present and non-empty. */
  function validate(body: Record<string, unknown>, required: readonly string[]): UserChanges & { password?: string } {
    const problems = fieldCollector();
    const problem = problems.add;
    const text = (key: string): string | undefined => {
      if (!has(body, key) || body[key] === null) return undefined;
      if (typeof body[key] !== 'string') {
        problem(key, 'must_be_string');
        return undefined;
      }
      return body[key] as string;
    };
    for (const key of required) {
      if (!has(body, key) || body[key] === null || body[key] === '') problem(key, 'required');
    }
    const out: UserChanges & { password?: string } = {};
    const username = text('username');
    if (username !== undefined && !problems.has('username')) {
      const p = usernameProblem(username);
      if (p) problem('username', p);
      else out.username = normalizeUsername(username);
    }
    if (has(body, 'email')) {
      const email = text('email');
      if (email === undefined || email === '') {
        if (!problems.has('email')) out.email = null;
      } else {
        const p = emailProblem(email.trim());
        if (p) problem('email', p);
        else out.email = email.trim();
      }
    }
    for (const [key, prop] of [
      ['first_name', 'firstName'],
      ['last_name', 'lastName'],
    ] as const) {
      const value = text(key);
      const p = value === undefined ? undefined : nameProblem(value);
      if (p) problem(key, p);
      else if (value !== undefined) out[prop] = value;
    }
    const password = text('password');
    if (password !== undefined && !problems.has('password')) {
      const p = passwordProblem(password);
      if (p) problem('password', p);
      else out.password = password;
    }
    for (const [key, prop] of [
      ['is_active', 'isActive'],
      ['is_staff', 'isStaff'],
      ['is_superuser', 'isSuperuser'],
    ] as const) {
      if (!has(body, key)) continue;
      if (typeof body[key] === 'boolean') out[prop] = body[key];
      else problem(key, 'must_be_boolean');
    }
    problems.throwIfAny();
    return out;
  }

  /** Stores a validated new user and records `user.created` by `who`. */
  async function insert(input: UserChanges & { password?: string }, who: ReturnType<typeof actorEntry>): Promise<User> {
    let created: User;
    try {
      created = await users.create({
        username: input.username!,
        email: input.email ?? null,
        passwordHash: await hasher.hash(input.password!),
        firstName: input.firstName ?? '',
        lastName: input.lastName ?? '',
        isActive: input.isActive ?? true,
        isStaff: input.isStaff ?? false,
        isSuperuser: input.isSuperuser ?? false,
        ...(input.emailVerified ? { emailVerified: true } : {}),
      });
    } catch (error) {
      conflict(error);
    }
    await audit.record('user.created', {
      ...who,
      targetType: 'user',
      targetId: created.id,
      details: { username: created.username, is_staff: created.isStaff, is_superuser: created.isSuperuser, is_active: created.isActive },
    });
    return created;
  }

  /** Ends every session, grant and token of a user: OIDC ones and API refresh tokens. */
  async function revokeEverything(userId: number): Promise<void> {
    await revokeAccount(knex, String(userId));
    await apiTokens.revokeUser(userId);
  }

  /** True when `target` is the only active superuser: nobody could manage superusers after them. */
  async function isLastSuperuser(target: User): Promise<boolean> {
    return target.isSuperuser && target.isActive && (await users.countOtherActiveSuperusers(target.id)) === 0;
  }

  /** Only a superuser may change or delete another superuser (else staff could take one over). */
  function assertMayManage(actor: Actor, target: User): void {
    if (target.isSuperuser && actor.user?.id !== target.id && !actor.user?.isSuperuser) {
      throw new DomainError('superuser_only');
    }
  }

  return {
    checkWritable,
    validate,
    revokeEverything,
    isLastSuperuser,

    /** Registration or staff creation; `requireEmail` for /api/users/ (the legacy endpoint makes it optional). */
    async create(actor: Actor, body: Record<string, unknown>, { requireEmail = false } = {}): Promise<User> {
      checkWritable(actor, body);
      if (has(body, 'current_password')) throw InvalidInput.of('current_password', 'not_used_on_create');
      const input = validate(body, requireEmail ? ['username', 'password', 'email'] : ['username', 'password']);
      const created = await insert(input, auditActor(actor));
      // Self-registration only: staff creating accounts decide themselves what to tell people.
      if (!actor.user && created.email && !created.emailVerified) onUnverifiedEmail?.(created, 'registered');
      return created;
    },

    /**
     * A superuser made by the operator (the CLI's createsuperuser, `by` names it): the same
     * checks as any new account, an email required, and counted as verified, since whoever
     * runs the server typed it.
     */
    async createSuperuser(by: AuditActor, fields: { username: string; email: string; password: string }): Promise<User> {
      const input = validate(fields, ['username', 'email', 'password']);
      return insert({ ...input, isStaff: true, isSuperuser: true, emailVerified: true }, actorEntry(by));
    },

    /**
     * PUT (`replace`: username required, absent names and email reset) or PATCH.
     *
     * A person changing their own email or password proves it is them first
     * (`current_password`, and `otp` with two-factor), throttled like a login; so does anyone
     * but staff changing a password. Their new address stays pending (`pending_email`) until
     * verified: login, reset and notices keep the old one, which is told of the change. Staff
     * changing someone else's account need no proof: the audit log names them.
     */
    async update(actor: Actor, target: User, body: Record<string, unknown>, { replace }: { replace: boolean }): Promise<User> {
      assertMayManage(actor, target);
      checkWritable(actor, body);
      const input = validate(body, replace ? ['username'] : []);
      const self = actor.user?.id === target.id;
      const changes: UserChanges = { ...input };
      delete (changes as { password?: string }).password;
      if (replace) {
        changes.firstName ??= '';
        changes.lastName ??= '';
        if (!has(body, 'email')) changes.email = null;
      }
      const emailChanging = changes.email !== undefined && normalizeEmail(changes.email) !== target.email;
      if (changes.email !== undefined && !emailChanging) delete changes.email;
      const passwordChanging = input.password !== undefined;
      const needsProof = (self && (emailChanging || passwordChanging)) || (passwordChanging && !actor.user?.isStaff);
      if (needsProof) {
        await confirmIdentity(target, { password: body['current_password'], otp: body['otp'] }, { ip: actor.ip ?? 'unknown', via: emailChanging ? 'email_change' : 'password_change' });
      } else if (has(body, 'current_password') || has(body, 'otp')) {
        const unneeded = [fieldProblem('proof_not_needed')];
        throw new InvalidInput(Object.fromEntries(['current_password', 'otp'].filter((k) => has(body, k)).map((k) => [k, unneeded])));
      }
      if (passwordChanging) changes.passwordHash = await hasher.hash(input.password!);

      // A person's own new address waits for verification; staff set it (unverified) directly.
      const pendingAddress = self && emailChanging && changes.email ? normalizeEmail(changes.email) : null;
      if (pendingAddress) {
        await emailChanges?.allow(target, pendingAddress, actor.ip);
        delete changes.email;
        changes.pendingEmail = pendingAddress;
      } else if (emailChanging) {
        changes.emailVerified = false;
        changes.pendingEmail = null;
      }

      let updated: User | undefined;
      try {
        updated = await users.update(target.id, changes);
      } catch (error) {
        conflict(error);
      }
      if (!updated) throw new DomainError('user_not_found');
      // A deactivated user or a changed password ends every existing login.
      if ((changes.isActive === false && target.isActive) || changes.passwordHash) await revokeEverything(target.id);
      const who = { ...auditActor(actor), targetType: 'user', targetId: target.id };
      const fields = Object.keys(body).filter((k) => k !== 'password' && k !== 'current_password' && k !== 'otp');
      if (fields.length) await audit.record('user.updated', { ...who, details: { fields, ...(pendingAddress ? { email: 'pending_verification' } : {}) } });
      if (changes.passwordHash) await audit.record('user.password_changed', { ...who, details: { self } });
      if (changes.isActive === false && target.isActive) await audit.record('user.deactivated', who);
      // A person's own change (a pending address, or a removed one): the new address gets its link, the old one a notice.
      if (self && emailChanging) emailChanges?.announce(updated, target.email);
      else if (updated.email && updated.email !== target.email && !updated.emailVerified) onUnverifiedEmail?.(updated, 'email_changed');
      return updated;
    },

    /**
     * Sets a new password for someone who proved control of the account's mailbox (a reset
     * link): no current password, and, as for every password change, every session, grant
     * and token of the user ends.
     */
    async resetPassword(actor: Actor, target: User, password: string): Promise<void> {
      const problem = passwordProblem(password);
      if (problem) throw new InvalidInput({ password: [problem] });
      await users.setPasswordHash(target.id, await hasher.hash(password));
      await revokeEverything(target.id);
      await audit.record('user.password_reset', { ...auditActor(actor), targetType: 'user', targetId: target.id });
    },

    /**
     * Deletes a user and everything issued to them; never the last active superuser. People
     * deleting their own account prove it is them (`proof`, unless the caller did already).
     */
    async remove(actor: Actor, target: User, { proof, confirmed = false }: Confirmed & { proof?: { password: unknown; otp?: unknown } } = {}): Promise<void> {
      assertMayManage(actor, target);
      // The proof first: without it, nothing about the account is told.
      if (actor.user?.id === target.id && !confirmed) {
        await confirmIdentity(target, proof ?? { password: undefined }, { ip: actor.ip ?? 'unknown', via: 'account_delete' });
      }
      if (await isLastSuperuser(target)) throw new LastSuperuser();
      await revokeEverything(target.id);
      await users.delete(target.id);
      await audit.record('user.deleted', { ...auditActor(actor), targetType: 'user', targetId: target.id, details: { username: target.username } });
    },
  };
}

export type UserService = ReturnType<typeof createUserService>;
