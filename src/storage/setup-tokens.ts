import type { Knex } from 'knex';

/**
 * SQL for `setup_tokens` (the first-administrator links) and the one question about `users`
 * the setup needs. A token is claimed by one conditional UPDATE, so of two parallel uses
 * (in one process or several) exactly one holds it.
 */
export function createSetupTokenRepository(knex: Knex) {
  const table = () => knex('setup_tokens');

  return {
    async insert(tokenHash: string, createdAt: number, expiresAt: number): Promise<void> {
      await table().insert({ token_hash: tokenHash, created_at: createdAt, expires_at: expiresAt, used_at: null });
    },

    /** True when the token is unused and unexpired. */
    async usable(tokenHash: string, now: number): Promise<boolean> {
      const row = await table().where({ token_hash: tokenHash }).whereNull('used_at').andWhere('expires_at', '>', now).first('id');
      return row !== undefined;
    },

    /** Marks an unused, unexpired token used: true for exactly one caller. */
    async claim(tokenHash: string, now: number): Promise<boolean> {
      const updated = await table().where({ token_hash: tokenHash }).whereNull('used_at').andWhere('expires_at', '>', now).update({ used_at: now });
      return updated === 1;
    },

    /** Gives a claimed token back (the superuser could not be created, e.g. a taken username). */
    async release(tokenHash: string, claimedAt: number): Promise<void> {
      await table().where({ token_hash: tokenHash, used_at: claimedAt }).update({ used_at: null });
    },

    /** Removes every token: a superuser exists, so none may be used again. */
    async deleteAll(): Promise<number> {
      return table().delete();
    },

    /** Deletes tokens past their expiry. */
    async sweepExpired(now: number): Promise<number> {
      return table().where('expires_at', '<=', now).delete();
    },

    /** True when any superuser exists, active or not (a deactivated one can be reactivated by the CLI). */
    async superuserExists(): Promise<boolean> {
      const row = await knex('users').where({ is_superuser: true }).first('id');
      return row !== undefined;
    },
  };
}

export type SetupTokenRepository = ReturnType<typeof createSetupTokenRepository>;
