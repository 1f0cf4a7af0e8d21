import type { Knex } from 'knex';

/** A stored email-link token: its SHA-256 (never the token), whose it is and where it went. */
export interface NewEmailToken {
  tokenHash: string;
  userId: number;
  purpose: string;
  email: string;
  createdAt: number;
  expiresAt: number;
}

/** The user and address of a usable token. */
export interface EmailTokenOwner {
  userId: number;
  email: string;
}

const ownerOf = (row: { user_id: number | string; email: string } | undefined): EmailTokenOwner | undefined =>
  row ? { userId: Number(row.user_id), email: row.email } : undefined;

/** SQL for `email_tokens`. Consumption is one conditional UPDATE: of two parallel uses exactly one wins. */
export function createEmailTokenRepository(knex: Knex) {
  const table = () => knex('email_tokens');

  return {
    async insert(token: NewEmailToken): Promise<void> {
      await table().insert({
        token_hash: token.tokenHash,
        user_id: token.userId,
        purpose: token.purpose,
        email: token.email,
        created_at: token.createdAt,
        expires_at: token.expiresAt,
        used_at: null,
      });
    },

    /** The owner of an unused, unexpired token, leaving it unused. */
    async findUsable(tokenHash: string, purpose: string, now: number): Promise<EmailTokenOwner | undefined> {
      const row = (await table()
        .where({ token_hash: tokenHash, purpose })
        .whereNull('used_at')
        .andWhere('expires_at', '>', now)
        .first('user_id', 'email')) as { user_id: number; email: string } | undefined;
      return ownerOf(row);
    },

    /** Marks an unused, unexpired token used; its owner once, undefined for every later call. */
    async consume(tokenHash: string, purpose: string, now: number): Promise<EmailTokenOwner | undefined> {
      const rows = (await table()
        .where({ token_hash: tokenHash, purpose })
        .whereNull('used_at')
        .andWhere('expires_at', '>', now)
        .update({ used_at: now })
        .returning(['user_id', 'email'])) as Array<{ user_id: number; email: string }>;
      return ownerOf(rows[0]);
    },

    /** Marks every unused token of a user for a purpose used; returns how many. */
    async useAll(userId: number, purpose: string, now: number): Promise<number> {
      return table().where({ user_id: userId, purpose }).whereNull('used_at').update({ used_at: now });
    },

    /** Deletes tokens past their expiry, used or not. */
    async sweepExpired(now: number): Promise<number> {
      return table().where('expires_at', '<=', now).delete();
    },
  };
}

export type EmailTokenRepository = ReturnType<typeof createEmailTokenRepository>;
