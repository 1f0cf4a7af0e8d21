import { createHash } from 'node:crypto';
import { inSavepoint } from '../../storage/transactions.js';
import type { Knex } from 'knex';
import { parseDjangoHash } from '../accounts/django-hashes.js';
import { DomainError } from '../errors.js';
import { createImportLinkRepository } from '../../storage/django-import-links.js';
import type { DjangoApplicationRow } from '../../storage/django-source.js';
import { clientMetadata, createClientRepository, hashClientSecret, type ClientMetadata, type NewClient } from '../../storage/clients.js';
import { SKIP_CONSENT_METADATA } from '../clients/skip-consent.js';
import { RESOURCE_SERVER_METADATA, resourceServerFor } from '../clients/resource-server.js';
import type { ImportReport, SkipReason } from './import-report.js';

/** Latchkey's client rules and the provider's metadata validation (core/clients/client-service.ts). */
export type ValidateClient = (input: NewClient, metadata: ClientMetadata) => Promise<void>;

/** django-oauth-toolkit's grant type → Latchkey's grant_types (the refresh comes with it, as in DOT). */
const GRANTS: Record<string, string[]> = {
  'authorization-code': ['authorization_code', 'refresh_token'],
  password: ['password', 'refresh_token'],
  'client-credentials': ['client_credentials'],
};

const SKIPPED_GRANTS: Record<string, SkipReason> = { implicit: 'implicit_not_supported', 'openid-hybrid': 'hybrid_not_supported' };

/** Latchkey's secret column holds at most this much. */
const SECRET_COLUMN = 128;

const digest = (value: string | null) => createHash('sha256').update(value ?? '', 'utf8').digest('hex');

/**
 * An application as a Latchkey client, or why it cannot be one. ID tokens only for
 * `algorithm` RS256 (the `openid` scope); empty means OAuth only, as in DOT.
 */
function clientOf(row: DjangoApplicationRow): { input: NewClient; secretHash: string | null } | SkipReason {
  const grantTypes = GRANTS[row.grantType];
  if (!grantTypes) return SKIPPED_GRANTS[row.grantType] ?? 'unknown_grant_type';
  if (row.algorithm === 'HS256') return 'hs256_not_supported';
  const isPublic = row.clientType === 'public';
  let secretHash: string | null = null;
  if (!isPublic) {
    if (!row.clientSecret) return 'no_secret';
    // DOT 2 stores make_password(secret); DOT 1 the secret itself.
    secretHash = parseDjangoHash(row.clientSecret) ? row.clientSecret : hashClientSecret(row.clientSecret);
    if (secretHash.length > SECRET_COLUMN) return 'secret_too_long';
  }
  const input: NewClient = {
    name: row.name.trim() || row.clientId,
    redirectUris: row.redirectUris,
    postLogoutRedirectUris: row.postLogoutRedirectUris,
    grantTypes,
    isPublic,
    scope: row.algorithm === 'RS256' ? 'openid profile email groups offline_access' : 'profile email groups offline_access',
  };
  return { input, secretHash };
}

/**
 * Brings DOT's applications into Latchkey with their client_id and secret, one savepoint per
 * row, inside the caller's transaction. Idempotent like the users (django_import_links): a
 * later run updates name and metadata, and the secret only while it is still the one the
 * last run stored (not rotated in Latchkey, nor upgraded from a DOT 2 hash at first use).
 */
export async function importDjangoClients(
  trx: Knex.Transaction,
  rows: DjangoApplicationRow[],
  validate: ValidateClient,
  report: ImportReport,
): Promise<void> {
  report.clients.found = rows.length;
  const skip = (row: DjangoApplicationRow, reason: SkipReason, detail?: string) => {
    report.clients.skipped += 1;
    report.skipped.push({ kind: 'client', source_id: row.id, name: row.name, reason, ...(detail ? { detail } : {}) });
  };
  for (const row of rows) {
    const mapped = clientOf(row);
    if (typeof mapped === 'string') {
      skip(row, mapped, mapped === 'unknown_grant_type' ? row.grantType : undefined);
      continue;
    }
    // DOT's skip_authorization: no consent screen for this client (see provider.ts).
    const metadata: ClientMetadata = { ...clientMetadata(mapped.input), ...(row.skipAuthorization ? { [SKIP_CONSENT_METADATA]: true } : {}) };
    try {
      await validate(mapped.input, metadata);
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      skip(row, 'invalid_client', error.message);
      continue;
    }
    try {
      const outcome = await inSavepoint(trx, async (savepoint) => importOne(savepoint, row, mapped.input.name, metadata, mapped.secretHash));
      if (outcome === 'created' || outcome === 'updated' || outcome === 'unchanged') report.clients[outcome] += 1;
      else skip(row, outcome);
    } catch (error) {
      report.errors.push({ kind: 'client', source_id: row.id, name: row.name, message: (error as Error).message.split('\n')[0] ?? '' });
    }
  }
}

async function importOne(
  knex: Knex,
  row: DjangoApplicationRow,
  name: string,
  metadata: ClientMetadata,
  secretHash: string | null,
): Promise<'created' | 'updated' | 'unchanged' | SkipReason> {
  const clients = createClientRepository(knex);
  const links = createImportLinkRepository(knex);
  const link = await links.find('client', row.id);
  const existing = await clients.findProviderMetadata(link?.targetId ?? row.clientId);
  if (link && !existing) return 'deleted_in_latchkey';
  if (!link && existing) return 'client_id_taken';
  if (!existing) {
    await clients.insertImported({ clientId: row.clientId, name, metadata, secretHash });
    await links.save('client', row.id, { targetId: row.clientId, sourceDigest: digest(secretHash) });
    return 'created';
  }
  const stored = typeof existing['client_secret'] === 'string' ? existing['client_secret'] : null;
  const untouched = link?.sourceDigest === digest(stored);
  const { client_id: _id, client_secret: _secret, ...storedMetadata } = existing;
  // Not Django's: what staff (or --resource-server) made this client the resource server of stays.
  const served = resourceServerFor(storedMetadata);
  if (served.length) metadata = { ...metadata, [RESOURCE_SERVER_METADATA]: served };
  const nextSecret = untouched ? secretHash : stored;
  const record = await clients.find(row.clientId);
  if (record?.name === name && JSON.stringify(storedMetadata) === JSON.stringify(metadata) && nextSecret === stored) return 'unchanged';
  await clients.updateImported({ clientId: row.clientId, name, metadata, secretHash: nextSecret });
  if (nextSecret !== stored) await links.save('client', row.id, { targetId: row.clientId, sourceDigest: digest(nextSecret) });
  return 'updated';
}

/**
 * `--resource-server <client_id>`: the imported application is the resource server of the
 * Django site's API resource (DOT's RESOURCE_SERVER_INTROSPECTION_CREDENTIALS set-up), so it
 * may introspect the tokens issued to the other applications for DOT's scopes. Confidential
 * applications this import brought only; the others are reported as skipped.
 */
export async function markDjangoResourceServers(
  trx: Knex.Transaction,
  clientIds: string[],
  applications: DjangoApplicationRow[],
  resourceIdentifier: string,
  report: ImportReport,
): Promise<void> {
  const clients = createClientRepository(trx);
  const links = createImportLinkRepository(trx);
  report.resource_servers = [];
  for (const clientId of new Set(clientIds)) {
    const skip = (reason: SkipReason) => report.skipped.push({ kind: 'resource_server', source_id: clientId, name: clientId, reason });
    const app = applications.find((a) => a.clientId === clientId);
    if (!app) {
      skip('unknown_application');
      continue;
    }
    const record = (await links.isTarget('client', clientId)) ? await clients.find(clientId) : undefined;
    const metadata = record ? await clients.findProviderMetadata(clientId) : undefined;
    if (!record || !metadata) {
      skip('client_not_imported');
      continue;
    }
    if (record.isPublic) {
      skip('public_client');
      continue;
    }
    const { client_id: _id, client_secret: secret, ...stored } = metadata;
    const served = resourceServerFor(stored);
    if (!served.includes(resourceIdentifier)) {
      await clients.updateImported({
        clientId,
        name: record.name,
        metadata: { ...stored, [RESOURCE_SERVER_METADATA]: [...served, resourceIdentifier] } as ClientMetadata,
        secretHash: typeof secret === 'string' ? secret : null,
      });
    }
    report.resource_servers.push(clientId);
  }
}
