import { createHash, randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { createEmailTokenRepository } from '../../storage/email-tokens.js';

/** What a token in an email link allows. */
export type EmailTokenPurpose = 'verify_email' | 'reset_password';

/** How long a link stays valid. */
export const EMAIL_TOKEN_LIFETIME_MS: Readonly<Record<EmailTokenPurpose, number>> = {
  verify_email: 24 * 60 * 60 * 1000,
  reset_password: 30 * 60 * 1000,
};

/** A valid token's row: whose it is and the address the link was sent to. */
export interface EmailTokenGrant {
  userId: number;
  email: string;
}

/** 256 random bits, base64url without padding: what a link carries. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

const hashOf = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

/**
 * Single-use, expiring tokens for email links. The token itself only ever exists in the
 * mail; the table holds its SHA-256. Consumption is one conditional UPDATE, so of two
 * parallel uses exactly one wins, on SQLite and PostgreSQL alike.
 */
export function createEmailTokens(knex: Knex) {
  const tokens = createEmailTokenRepository(knex);

  return {
    /** Issues a token for `userId`, sent to `email`; returns the token to put in the link. */
    async issue(userId: number, purpose: EmailTokenPurpose, email: string, now = Date.now()): Promise<string> {
      const token = randomBytes(32).toString('base64url');
      await tokens.insert({ tokenHash: hashOf(token), userId, purpose, email, createdAt: now, expiresAt: now + EMAIL_TOKEN_LIFETIME_MS[purpose] });
      return token;
    },

    /** Who a still-usable token belongs to, without using it (GET pages; mail scanners prefetch links). */
    async peek(token: unknown, purpose: EmailTokenPurpose, now = Date.now()): Promise<EmailTokenGrant | undefined> {
      if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return undefined;
      return tokens.findUsable(hashOf(token), purpose, now);
    },

    /** Uses a token: returns its grant once; unknown, used, expired or wrong-purpose tokens give undefined. */
    async consume(token: unknown, purpose: EmailTokenPurpose, now = Date.now()): Promise<EmailTokenGrant | undefined> {
      if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return undefined;
      return tokens.consume(hashOf(token), purpose, now);
    },

    /** Marks every unused token of a user for a purpose as used (after a reset, the other links die). */
    async invalidate(userId: number, purpose: EmailTokenPurpose, now = Date.now()): Promise<number> {
      return tokens.useAll(userId, purpose, now);
    },

    /** Deletes tokens past their expiry, used or not. */
    async sweep(now = Date.now()): Promise<number> {
      return tokens.sweepExpired(now);
    },
  };
}

export type EmailTokens = ReturnType<typeof createEmailTokens>;
