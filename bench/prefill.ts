/**
 * Fills oidc_payloads with synthetic rows for the growth workload: a realistic mix of models
 * (client-credentials and access tokens, refresh tokens, grants, sessions, interactions), ids
 * and payload sizes like the provider's, about half of them expired, spread over other
 * clients and accounts. Rows are generated inside the database (a recursive CTE in SQLite,
 * generate_series in PostgreSQL), 100,000 per statement: far faster than sending them.
 */
import type { Knex } from 'knex';

const CHUNK = 100_000;

function sqliteChunk(from: number, to: number, now: number): string {
  return `
WITH RECURSIVE seq(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM seq WHERE i < ${to})
INSERT INTO oidc_payloads (model, id, payload, grant_id, uid, user_code, account_id, client_id, expires_at, consumed_at)
SELECT model, id,
  '{"iat":' || (exp_ms / 1000 - 3600) || ',"exp":' || (exp_ms / 1000) || ',"kind":"' || model || '","jti":"' || id ||
    '","clientId":"prefill-client-' || (i % 50) || '","accountId":"' || (10 + i % 5000) || '","grantId":"g' || (i / 4) ||
    '","scope":"openid profile email","gty":"authorization_code","sessionUid":"s' || (i / 8) ||
    '","expiresWithSession":true,"claims":{},"sid":"' || lower(hex(randomblob(12))) || '","extra":{}}',
  CASE WHEN model IN ('Session', 'Interaction', 'ClientCredentials') THEN NULL ELSE 'g' || (i / 4) END,
  CASE WHEN model IN ('Session', 'Interaction') THEN lower(hex(randomblob(16))) ELSE NULL END,
  NULL,
  CASE WHEN model IN ('ClientCredentials', 'Interaction') THEN NULL ELSE CAST(10 + i % 5000 AS TEXT) END,
  'prefill-client-' || (i % 50),
  exp_ms,
  CASE WHEN model = 'RefreshToken' AND i % 3 = 0 THEN exp_ms - 86400000 ELSE NULL END
FROM (
  SELECT i,
    CASE WHEN i % 20 < 7 THEN 'ClientCredentials' WHEN i % 20 < 12 THEN 'AccessToken' WHEN i % 20 < 15 THEN 'RefreshToken'
         WHEN i % 20 < 17 THEN 'Grant' WHEN i % 20 < 19 THEN 'Session' ELSE 'Interaction' END AS model,
    lower(hex(randomblob(18))) || printf('%07d', i) AS id,
    CASE WHEN i % 2 = 0 THEN ${now} - 1000 * (1 + abs(random()) % 1209600) ELSE ${now} + 1000 * (60 + abs(random()) % 1209600) END AS exp_ms
  FROM seq
)`;
}

function pgChunk(from: number, to: number, now: number): string {
  return `
INSERT INTO oidc_payloads (model, id, payload, grant_id, uid, user_code, account_id, client_id, expires_at, consumed_at)
SELECT model, id,
  '{"iat":' || (exp_ms / 1000 - 3600) || ',"exp":' || (exp_ms / 1000) || ',"kind":"' || model || '","jti":"' || id ||
    '","clientId":"prefill-client-' || (i % 50) || '","accountId":"' || (10 + i % 5000) || '","grantId":"g' || (i / 4) ||
    '","scope":"openid profile email","gty":"authorization_code","sessionUid":"s' || (i / 8) ||
    '","expiresWithSession":true,"claims":{},"sid":"' || substr(md5(random()::text), 1, 24) || '","extra":{}}',
  CASE WHEN model IN ('Session', 'Interaction', 'ClientCredentials') THEN NULL ELSE 'g' || (i / 4) END,
  CASE WHEN model IN ('Session', 'Interaction') THEN md5(random()::text) ELSE NULL END,
  NULL,
  CASE WHEN model IN ('ClientCredentials', 'Interaction') THEN NULL ELSE (10 + i % 5000)::text END,
  'prefill-client-' || (i % 50),
  exp_ms,
  CASE WHEN model = 'RefreshToken' AND i % 3 = 0 THEN exp_ms - 86400000 ELSE NULL END
FROM (
  SELECT i,
    CASE WHEN i % 20 < 7 THEN 'ClientCredentials' WHEN i % 20 < 12 THEN 'AccessToken' WHEN i % 20 < 15 THEN 'RefreshToken'
         WHEN i % 20 < 17 THEN 'Grant' WHEN i % 20 < 19 THEN 'Session' ELSE 'Interaction' END AS model,
    md5(random()::text) || substr(md5(i::text), 1, 4) || lpad(i::text, 7, '0') AS id,
    CASE WHEN i % 2 = 0 THEN ${now}::bigint - 1000 * (1 + floor(random() * 1209600)::bigint)
         ELSE ${now}::bigint + 1000 * (60 + floor(random() * 1209600)::bigint) END AS exp_ms
  FROM generate_series(${from}, ${to}) AS i
) AS rows`;
}

/** Inserts `rows` synthetic rows; returns the table's row count afterwards. */
export async function prefillPayloads(knex: Knex, backend: 'sqlite' | 'pg', rows: number): Promise<number> {
  const now = Date.now();
  for (let from = 1; from <= rows; from += CHUNK) {
    const to = Math.min(rows, from + CHUNK - 1);
    await knex.raw(backend === 'pg' ? pgChunk(from, to, now) : sqliteChunk(from, to, now));
  }
  // PostgreSQL's autovacuum would analyze a table this size soon after; do it now so plans
  // are what a running system would have.
  if (backend === 'pg') await knex.raw('ANALYZE oidc_payloads');
  const [{ count } = { count: 0 }] = (await knex('oidc_payloads').count({ count: '*' })) as Array<{ count: number | string }>;
  return Number(count);
}
