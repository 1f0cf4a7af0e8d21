import { createHash, randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { createSetupTokenRepository } from '../../storage/setup-tokens.js';
import type { User } from '../../storage/users.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { UserService } from './user-service.js';

/** How long a printed setup link works (a restart with still no superuser prints a new one). */
export const SETUP_TOKEN_LIFETIME_MS = 24 * 60 * 60 * 1000;

/** 256 random bits, base64url without padding, as in the email links. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
const hashOf = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');
const hashIfWellFormed = (token: unknown) => (typeof token === 'string' && TOKEN_SHAPE.test(token) ? hashOf(token) : undefined);

/** Where a setup link stands: usable, unknown/used/expired, or moot since a superuser exists. */
export type SetupLinkState = 'open' | 'invalid' | 'done';

export type SetupResult = { ok: true; user: User } | { ok: false; reason: 'invalid' | 'done' };

/**
 * The first administrator, made in the browser (as authentik's initial-setup flow and
 * Keycloak's welcome page do): while no superuser exists, each server start issues a
 * single-use link (24 hours) whose token is stored only as its SHA-256 in the shared
 * database. A link dies when used and as soon as any superuser exists, however it was made
 * (the CLI, another process, the admin pages).
 */
export function createInitialSetup({ knex, userService, audit }: { knex: Knex; userService: UserService; audit: AuditLog }) {
  const tokens = createSetupTokenRepository(knex);

  /** Once a superuser exists no link may ever work again: forget them all. */
  async function closedForGood(): Promise<boolean> {
    if (!(await tokens.superuserExists())) return false;
    await tokens.deleteAll();
    return true;
  }

  return {
    /** A new link's token when there is no superuser yet (for the start-up log), else undefined. */
    async issueIfNeeded(now = Date.now()): Promise<string | undefined> {
      if (await closedForGood()) return undefined;
      await tokens.sweepExpired(now);
      const token = randomBytes(32).toString('base64url');
      await tokens.insert(hashOf(token), now, now + SETUP_TOKEN_LIFETIME_MS);
      await audit.record('setup.link_issued', { actor: 'system' });
      return token;
    },

    /** Whether the link can still be used, without using it (the GET of the page). */
    async state(token: unknown, now = Date.now()): Promise<SetupLinkState> {
      if (await closedForGood()) return 'done';
      const hash = hashIfWellFormed(token);
      return hash && (await tokens.usable(hash, now)) ? 'open' : 'invalid';
    },

    /**
     * Creates the first superuser with the link: the token is claimed first (one of two
     * parallel uses wins), given back if the account is refused (a weak password, a taken
     * username: the InvalidInput/DomainError is thrown for the page to show), and gone for
     * good once the superuser exists. Audited as `user.created` by `initial-setup`.
     */
    async complete(token: unknown, fields: { username: string; email: string; password: string }, ip: string, now = Date.now()): Promise<SetupResult> {
      if (await closedForGood()) return { ok: false, reason: 'done' };
      const hash = hashIfWellFormed(token);
      if (!hash || !(await tokens.claim(hash, now))) {
        await audit.record('setup.link_refused', { actor: 'anonymous', ip });
        return { ok: false, reason: 'invalid' };
      }
      let user: User;
      try {
        // Another process (or the CLI) may have made one since the check above.
        if (await tokens.superuserExists()) {
          await tokens.deleteAll();
          return { ok: false, reason: 'done' };
        }
        user = await userService.createSuperuser({ label: 'initial-setup', ip }, fields);
      } catch (error) {
        await tokens.release(hash, now);
        throw error;
      }
      await tokens.deleteAll();
      return { ok: true, user };
    },
  };
}

export type InitialSetup = ReturnType<typeof createInitialSetup>;
