import type { Knex } from 'knex';
import { fastQuery } from './fast-query.js';

/** A user's TOTP enrollment: pending while `enabledAt` is null. The secret stays sealed here. */
export interface TwoFactorRecord {
  userId: number;
  secretSealed: string;
  createdAt: number;
  enabledAt: number | null;
  lastUsedStep: number | null;
}

interface TwoFactorRow {
  user_id: number;
  secret_sealed: string;
  created_at: number | string;
  enabled_at: number | string | null;
  last_used_step: number | string | null;
}

const num = (value: number | string | null): number | null => (value === null ? null : Number(value));

function fromRow(row: TwoFactorRow): TwoFactorRecord {
  return {
    userId: Number(row.user_id),
    secretSealed: row.secret_sealed,
    createdAt: Number(row.created_at),
    enabledAt: num(row.enabled_at),
    lastUsedStep: num(row.last_used_step),
  };
}

/** SQL for `two_factor` and `two_factor_recovery_codes`. Single-use rules are settled in SQL. */
export function createTwoFactorRepository(knex: Knex) {
  const table = () => knex<TwoFactorRow>('two_factor');
  const codes = () => knex('two_factor_recovery_codes');

  return {
    async find(userId: number): Promise<TwoFactorRecord | undefined> {
      const row = await table().where({ user_id: userId }).first();
      return row ? fromRow(row) : undefined;
    },

    /** True when the user has confirmed an authenticator (a second factor is required). */
    async isEnabled(userId: number): Promise<boolean> {
      // Asked at every password login: a prepared statement.
      return (await fastQuery(knex, 'select user_id from two_factor where user_id = ? and enabled_at is not null limit 1', [userId], 'first')) !== undefined;
    },

    /**
     * Starts (or restarts) an enrollment with a new sealed secret, unless one is enabled.
     * @returns false when the user already has two-factor authentication enabled.
     */
    async startPending(userId: number, secretSealed: string, now = Date.now()): Promise<boolean> {
      // One upsert that leaves an enabled row alone, so two requests at once cannot collide.
      await knex.raw(
        `insert into two_factor (user_id, secret_sealed, created_at, enabled_at, last_used_step) values (?, ?, ?, null, null)
         on conflict (user_id) do update set secret_sealed = excluded.secret_sealed, created_at = excluded.created_at, last_used_step = null
         where two_factor.enabled_at is null`,
        [userId, secretSealed, now],
      );
      const row = await this.find(userId);
      return row !== undefined && row.enabledAt === null && row.secretSealed === secretSealed;
    },

    /**
     * Enables a pending enrollment with its first accepted step and replaces the recovery
     * codes, in one transaction. False when the enrollment is gone, already enabled, or was
     * restarted with another secret meanwhile.
     */
    async enable(userId: number, secretSealed: string, step: number, codeHashes: string[], now = Date.now()): Promise<boolean> {
      return knex.transaction(async (trx) => {
        const updated = await trx('two_factor')
          .where({ user_id: userId, secret_sealed: secretSealed })
          .whereNull('enabled_at')
          .update({ enabled_at: now, last_used_step: step });
        if (!updated) return false;
        await trx('two_factor_recovery_codes').where({ user_id: userId }).delete();
        await trx('two_factor_recovery_codes').insert(codeHashes.map((code_hash) => ({ user_id: userId, code_hash, created_at: now, used_at: null })));
        return true;
      });
    },

    /**
     * Records `step` as used if it is later than the last used one: one conditional UPDATE, so
     * of two requests with the same code only one succeeds.
     */
    async claimStep(userId: number, step: number): Promise<boolean> {
      const updated = await table()
        .where({ user_id: userId })
        .whereNotNull('enabled_at')
        .andWhere((q) => q.whereNull('last_used_step').orWhere('last_used_step', '<', step))
        .update({ last_used_step: step });
      return updated > 0;
    },

    /** Marks an unused recovery code used (one conditional UPDATE); false if unknown or used. */
    async useRecoveryCode(userId: number, codeHash: string, now = Date.now()): Promise<boolean> {
      const updated = await codes().where({ user_id: userId, code_hash: codeHash }).whereNull('used_at').update({ used_at: now });
      return updated > 0;
    },

    async remainingRecoveryCodes(userId: number): Promise<number> {
      const row = (await codes().where({ user_id: userId }).whereNull('used_at').count<{ n: number }[]>({ n: '*' }).first()) as { n: number } | undefined;
      return Number(row?.n ?? 0);
    },

    /** Replaces every recovery code of an enabled user; false if two-factor is not enabled. */
    async replaceRecoveryCodes(userId: number, codeHashes: string[], now = Date.now()): Promise<boolean> {
      return knex.transaction(async (trx) => {
        const enabled = await trx('two_factor').where({ user_id: userId }).whereNotNull('enabled_at').forUpdate().first('user_id');
        if (!enabled) return false;
        await trx('two_factor_recovery_codes').where({ user_id: userId }).delete();
        await trx('two_factor_recovery_codes').insert(codeHashes.map((code_hash) => ({ user_id: userId, code_hash, created_at: now, used_at: null })));
        return true;
      });
    },

    /** Forgets the secret and the recovery codes; says whether there was anything to forget. */
    async remove(userId: number): Promise<boolean> {
      return knex.transaction(async (trx) => {
        const codesDeleted = await trx('two_factor_recovery_codes').where({ user_id: userId }).delete();
        const deleted = await trx('two_factor').where({ user_id: userId }).delete();
        return deleted > 0 || codesDeleted > 0;
      });
    },
  };
}

export type TwoFactorRepository = ReturnType<typeof createTwoFactorRepository>;
