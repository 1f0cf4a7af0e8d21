import type { Knex } from 'knex';
import { createAuditLog } from '../audit/audit-log.js';
import { inTransaction } from '../../storage/transactions.js';
import { openDjangoSource, type DjangoCountedTable } from '../../storage/django-source.js';
import { importDjangoClients, type ValidateClient } from './django-clients.js';
import { importDjangoDirectPermissions, importDjangoGroups, importDjangoMemberships } from './django-groups.js';
import { importDjangoUsers } from './django-users.js';
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
   * Checks each application as a Latchkey client before it is stored; made on the import's
   * transaction, so whatever building it writes (first signing keys) goes when a dry run does.
   */
  clientValidator: (trx: Knex.Transaction) => Promise<ValidateClient>;
}

/** Found in the source, not imported by this version yet: counted so the report says so. */
const NOT_YET: Array<[DjangoCountedTable, string]> = [
  ['oauth2_provider_accesstoken', 'access tokens'],
  ['oauth2_provider_refreshtoken', 'refresh tokens'],
];

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
    for (const [table, what] of NOT_YET) {
      const n = await source.count(table);
      if (n > 0) report.not_imported[what] = n;
    }
    await inTransaction(
      knex,
      async (trx) => {
        await importDjangoUsers(trx, rows, { emailsVerified: options.emailsVerified, verifiedEmails }, report);
        await importDjangoClients(trx, applications, await options.clientValidator(trx), report);
        const importedGroups = await importDjangoGroups(trx, groups, report);
        await importDjangoMemberships(trx, rows, memberships, importedGroups, report);
        await importDjangoDirectPermissions(trx, rows, directPermissions, report);
        if (options.dryRun) return;
        await createAuditLog(trx).record('import.django', {
          actor: 'cli',
          details: { source: report.source, users: report.users, clients: report.clients, groups: report.groups, memberships: report.memberships, user_permissions: report.user_permissions, skipped: report.skipped.length, errors: report.errors.length },
        });
      },
      { rollback: options.dryRun },
    );
    return report;
  } finally {
    await source.close();
  }
}
