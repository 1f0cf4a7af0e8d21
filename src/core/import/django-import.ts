import type { Knex } from 'knex';
import { createAuditLog } from '../audit/audit-log.js';
import { inTransaction } from '../../storage/transactions.js';
import { openDjangoSource, type DjangoCountedTable } from '../../storage/django-source.js';
import { importDjangoClients, markDjangoResourceServers, type ValidateClient } from './django-clients.js';
import { importDjangoDirectPermissions, importDjangoGroups, importDjangoMemberships } from './django-groups.js';
import { importDjangoTokens, type ImportedTokenWriter } from './django-tokens.js';
import { importDjangoUsers } from './django-users.js';
import { createClientRepository } from '../../storage/clients.js';
import type { DjangoApplicationRow } from '../../storage/django-source.js';
import type { ResourceRecord } from '../../storage/resources.js';
import { emptyReport, type ImportReport } from './import-report.js';

export interface DjangoImportOptions {
  /** A SQLite file or a postgres:// URL. */
  from: string;
  /** Django's user table: auth_user, or `<app>_<model>` for a custom user model. */
  userTable: string;
  /** Do everything, report it, then roll it all back. */
  dryRun: boolean;
  /** Django's addresses count as verified. */
  emailsVerified: boolean;
  /**
   * `--tokens`: bring DOT's live tokens, for the API resource `resource` (RFC 8707) whose
   * scopes are DOT's (its defaults, `scopes`, and those the tokens carry).
   */
  tokens?: { resource: string; scopes: string[]; resourceServers?: string[] };
  /**
   * The provider's part: checks each application as a Latchkey client before it is stored
   * and saves tokens through its models. Made on the import's transaction, so whatever it
   * writes (first signing keys, tokens) goes when a dry run does.
   */
  providerOn: (trx: Knex.Transaction) => Promise<{ validateClient: ValidateClient; tokenWriter: (resource: ResourceRecord) => ImportedTokenWriter }>;
}

/** Found in the source, not imported by this version yet: counted so the report says so. */
const NOT_YET: Array<[DjangoCountedTable, string]> = [
  ['oauth2_provider_accesstoken', 'access tokens'],
  ['oauth2_provider_refreshtoken', 'refresh tokens'],
];

/** The registered `scope` of each application's client (after this run's client import), by client_id. */
async function clientScopesOf(trx: Knex.Transaction, applications: DjangoApplicationRow[]): Promise<Map<string, Set<string>>> {
  const clients = createClientRepository(trx);
  const scopes = new Map<string, Set<string>>();
  for (const app of applications) {
    const metadata = await clients.findProviderMetadata(app.clientId);
    if (metadata && typeof metadata['scope'] === 'string') scopes.set(app.clientId, new Set(metadata['scope'].split(' ')));
  }
  return scopes;
}

/**
 * `import django`: reads the Django site, writes everything in one transaction on `knex`
 * (rolled back for a dry run, so the report is the same and nothing changes), and audits the
 * run as `import.django`. Throws DjangoSourceError when the source cannot be read.
 */
export async function importFromDjango(knex: Knex, options: DjangoImportOptions): Promise<ImportReport> {
  const source = await openDjangoSource(options.from, options.userTable);
  try {
    const report = emptyReport(source.describe, options.dryRun);
    const rows = await source.users();
    const verifiedEmails = await source.verifiedEmails();
    const applications = await source.applications();
    const groups = await source.groups();
    const memberships = await source.memberships();
    const directPermissions = await source.directPermissions();
    const tokens = options.tokens ? { accessTokens: await source.accessTokens(), refreshTokens: await source.refreshTokens() } : undefined;
    if (!tokens) {
      for (const [table, what] of NOT_YET) {
        const n = await source.count(table);
        if (n > 0) report.not_imported[what] = n;
      }
    }
    await inTransaction(
      knex,
      async (trx) => {
        await importDjangoUsers(trx, rows, { emailsVerified: options.emailsVerified, verifiedEmails }, report);
        const provider = await options.providerOn(trx);
        await importDjangoClients(trx, applications, provider.validateClient, report);
        const importedGroups = await importDjangoGroups(trx, groups, report);
        await importDjangoMemberships(trx, rows, memberships, importedGroups, report);
        await importDjangoDirectPermissions(trx, rows, directPermissions, report);
        if (tokens && options.tokens) {
          const tokenInput = {
            ...tokens,
            applications,
            djangoUserIds: new Set(rows.map((r) => r.id)),
            resourceIdentifier: options.tokens.resource,
            extraScopes: options.tokens.scopes,
            clientScopes: await clientScopesOf(trx, applications),
            now: Date.now(),
          };
          await importDjangoTokens(trx, tokenInput, provider.tokenWriter, report);
          if (options.tokens.resourceServers?.length) {
            await markDjangoResourceServers(trx, options.tokens.resourceServers, applications, report.django_resource?.identifier ?? options.tokens.resource, report);
          }
        }
        if (options.dryRun) return;
        await createAuditLog(trx).record('import.django', {
          actor: 'cli',
          details: { source: report.source, users: report.users, clients: report.clients, groups: report.groups, memberships: report.memberships, user_permissions: report.user_permissions, ...(report.access_tokens ? { access_tokens: report.access_tokens, refresh_tokens: report.refresh_tokens } : {}), skipped: report.skipped.length, errors: report.errors.length },
        });
      },
      { rollback: options.dryRun },
    );
    return report;
  } finally {
    await source.close();
  }
}
