import type { Knex } from 'knex';
import { createEmailTokens } from '../accounts/email-tokens.js';
import { createKeyStore } from '../keys/key-store.js';
import { createApiRefreshTokenRepository } from '../../storage/api-refresh-tokens.js';
import { sweepExpired } from '../../storage/oidc-payloads.js';

export interface SweepResult {
  expired_rows_deleted: number;
  api_refresh_tokens_deleted: number;
  retired_keys_deleted: number;
  email_tokens_deleted: number;
}

/** Deletes what has expired everywhere: OIDC rows, API refresh tokens, retired keys, email link tokens. */
export async function sweepAll(knex: Knex, now = Date.now()): Promise<SweepResult> {
  return {
    expired_rows_deleted: await sweepExpired(knex, now),
    api_refresh_tokens_deleted: await createApiRefreshTokenRepository(knex).sweepExpired(now),
    retired_keys_deleted: await createKeyStore(knex).deleteExpired(now),
    email_tokens_deleted: await createEmailTokens(knex).sweep(now),
  };
}
