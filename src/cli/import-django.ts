import { parseArgs } from 'node:util';
import type { Config } from '../config.js';
import { importProviderOn, withMigratedDatabase } from '../composition.js';
import { importFromDjango } from '../core/import/django-import.js';
import { reportLines } from '../core/import/import-report.js';
import { DjangoSourceError } from '../storage/django-source.js';
import { CliError } from './cli-error.js';
import { identifierProblem, scopeProblems } from '../core/resources/resource-input.js';

export const IMPORT_USAGE = `  import django --from <sqlite-file|postgres://…> [--user-table auth_user]
                [--emails-verified] [--tokens [--resource <url>] [--scope <name>]...
                [--resource-server <client_id>]...]
                [--dry-run] [--json]`;

/**
 * `import django …`: moves a Django site's accounts into this database. Prints the report
 * (one JSON line with --json); exits 1 when a row failed unexpectedly, 0 otherwise, also
 * when rows were skipped (the report says which and why).
 */
export async function importCommand(config: Config, args: string[], out: (line: string) => void): Promise<number> {
  const [from, ...rest] = args;
  if (from !== 'django') throw new CliError(`unknown import source "${from ?? ''}" (see: npm run cli -- help)`, 2);
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    values = parseArgs({
      args: rest,
      options: {
        from: { type: 'string' },
        'user-table': { type: 'string' },
        'emails-verified': { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        tokens: { type: 'boolean' },
        resource: { type: 'string' },
        scope: { type: 'string', multiple: true },
        'resource-server': { type: 'string', multiple: true },
        json: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    throw new CliError(`${(error as Error).message} (see: npm run cli -- help)`, 2);
  }
  const source = values['from'];
  if (typeof source !== 'string' || !source.trim()) throw new CliError('--from is required: the Django database (a SQLite file or a postgres:// URL)', 2);

  const tokens = values['tokens'] === true;
  if (!tokens && (values['resource'] !== undefined || values['scope'] !== undefined || values['resource-server'] !== undefined)) {
    throw new CliError('--resource, --scope and --resource-server go with --tokens', 2);
  }
  const resourceServers = Array.isArray(values['resource-server']) ? values['resource-server'].map((s) => s.trim()).filter(Boolean) : [];
  const resource = typeof values['resource'] === 'string' ? values['resource'].trim() : `${config.publicUrl}/django`;
  const resourceIssue = identifierProblem(resource);
  if (resourceIssue) throw new CliError(`--resource ${JSON.stringify(resource)} is not an API resource identifier (an absolute http(s) URL without fragment)`, 2);
  const scopes = Array.isArray(values['scope']) ? values['scope'].flatMap((s) => s.split(/\s+/)).filter(Boolean) : [];
  const scopeIssue = scopes.find((s) => scopeProblems([s]).length);
  if (scopeIssue !== undefined) throw new CliError(`--scope ${JSON.stringify(scopeIssue)} is not a scope an API resource may offer (no OpenID Connect names, no spaces or quotes)`, 2);

  try {
    return await withMigratedDatabase(config, async (knex) => {
      const report = await importFromDjango(knex, {
        from: source.trim(),
        userTable: typeof values['user-table'] === 'string' ? values['user-table'] : 'auth_user',
        dryRun: values['dry-run'] === true,
        emailsVerified: values['emails-verified'] === true,
        ...(tokens ? { tokens: { resource, scopes, resourceServers } } : {}),
        providerOn: (trx) => importProviderOn(config, trx),
      });
      if (values['json']) out(JSON.stringify(report));
      else for (const line of reportLines(report)) out(line);
      return report.errors.length ? 1 : 0;
    });
  } catch (error) {
    if (error instanceof DjangoSourceError) throw new CliError(error.message);
    throw error;
  }
}
