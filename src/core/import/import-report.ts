/** What `import django` did (or, with --dry-run, would do): the same shape either way. */
export interface ImportReport {
  /** The source database (a file path, or postgres://host:port/db without credentials). */
  source: string;
  dry_run: boolean;
  users: RowCounts;
  /** OAuth applications (django-oauth-toolkit) → clients. */
  clients: RowCounts;
  /** auth_group → groups, with their permissions. */
  groups: RowCounts;
  /**
   * `--tokens`: DOT's live access and refresh tokens, which keep working here (absent without
   * the option: the report counts them under not_imported instead).
   */
  access_tokens?: RowCounts;
  refresh_tokens?: RowCounts;
  /** `--tokens`: the API resource whose scopes are DOT's (RFC 8707), and those scopes. */
  django_resource?: { identifier: string; scopes: string[]; outcome: 'created' | 'updated' | 'unchanged' };
  /** `--resource-server`: the imported clients that are the Django resource's resource servers. */
  resource_servers?: string[];
  /** Memberships of imported users in imported groups, after the run. */
  memberships: number;
  /** Permissions given to imported users directly (Django's user_permissions), after the run. */
  user_permissions: number;
  /** Imported users by the format of their password: `pbkdf2_sha256`, `unusable`, `unsupported:md5`, ... */
  passwords: Record<string, number>;
  /** Found in the source, not imported by this version (see README "Moving from Django"). */
  not_imported: Record<string, number>;
  /** Rows left out on purpose, each with why. */
  skipped: SkippedRow[];
  /** Rows that failed unexpectedly; any makes the command exit 1. */
  errors: Array<{ kind: string; source_id: string; name: string; message: string }>;
}

export interface RowCounts {
  found: number;
  created: number;
  updated: number;
  unchanged: number;
  skipped: number;
}

export type SkipReason =
  /** A Latchkey account that did not come from this import has the username. */
  | 'username_taken'
  /** Another account (in Latchkey, or an earlier row of this import) has the address. */
  | 'email_taken'
  /** Django allowed it, Latchkey's rule does not (letters, digits, @ . + - _, at most 150). */
  | 'invalid_username'
  | 'invalid_email'
  /** Imported by an earlier run and deleted in Latchkey since: not brought back. */
  | 'deleted_in_latchkey'
  /** A Latchkey client that did not come from this import has the client_id. */
  | 'client_id_taken'
  /** Implicit and hybrid grants hand tokens to the browser's address bar: Latchkey has neither. */
  | 'implicit_not_supported'
  | 'hybrid_not_supported'
  | 'unknown_grant_type'
  /** ID tokens signed with the client secret (HS256): Latchkey signs only with its own keys. */
  | 'hs256_not_supported'
  /** A confidential application without a secret. */
  | 'no_secret'
  /** A DOT 2 hashed secret longer than Latchkey's column (128). */
  | 'secret_too_long'
  /** Latchkey's client rules or the provider's refuse it (detail says why). */
  | 'invalid_client'
  /** A Latchkey group that did not come from this import has the name. */
  | 'group_name_taken'
  /** A DOT access token past its `expires`. */
  | 'expired'
  /** A DOT refresh token DOT revoked (used and rotated, or revoked by the app). */
  | 'revoked'
  /** The token's user or application is not in the Django database. */
  | 'unknown_user'
  | 'unknown_application'
  /** The token's user or application was not brought into Latchkey (skipped; see its row). */
  | 'user_not_imported'
  | 'client_not_imported'
  /** A refresh token whose access token DOT deleted, so it has no scope left; or a scope that is no RFC 6749 scope token. */
  | 'no_scope'
  | 'invalid_scope'
  /** `--resource-server` names a public client: introspection needs client authentication. */
  | 'public_client';

export interface SkippedRow {
  kind: 'user' | 'client' | 'group' | 'access_token' | 'refresh_token' | 'resource_server';
  source_id: string;
  name: string;
  reason: SkipReason;
  /** More words, where the reason alone does not say it. */
  detail?: string;
}

export function emptyReport(source: string, dryRun: boolean): ImportReport {
  return {
    source,
    dry_run: dryRun,
    users: { found: 0, created: 0, updated: 0, unchanged: 0, skipped: 0 },
    clients: { found: 0, created: 0, updated: 0, unchanged: 0, skipped: 0 },
    groups: { found: 0, created: 0, updated: 0, unchanged: 0, skipped: 0 },
    memberships: 0,
    user_permissions: 0,
    passwords: {},
    not_imported: {},
    skipped: [],
    errors: [],
  };
}

/** The report in a few lines for a terminal. */
export function reportLines(report: ImportReport): string[] {
  const counts = (what: string, c: RowCounts) => `${what}: ${c.found} found, ${c.created} created, ${c.updated} updated, ${c.unchanged} unchanged, ${c.skipped} skipped`;
  const lines = [
    `${report.dry_run ? 'dry run (nothing changed): ' : ''}imported from ${report.source}`,
    counts('users', report.users),
    counts('clients', report.clients),
    `${counts('groups', report.groups)}; ${report.memberships} membership(s)`,
  ];
  if (report.django_resource) lines.push(`API resource ${report.django_resource.identifier} (DOT's scopes: ${report.django_resource.scopes.join(' ')}): ${report.django_resource.outcome}`);
  if (report.resource_servers?.length) lines.push(`resource servers of ${report.django_resource?.identifier ?? 'the Django resource'}: ${report.resource_servers.join(', ')}`);
  if (report.access_tokens) lines.push(counts('access tokens', report.access_tokens));
  if (report.refresh_tokens) lines.push(counts('refresh tokens', report.refresh_tokens));
  const formats = Object.entries(report.passwords).map(([format, n]) => `${format} ${n}`);
  if (formats.length) lines.push(`passwords: ${formats.join(', ')}`);
  for (const [what, n] of Object.entries(report.not_imported)) lines.push(`not imported yet: ${n} ${what}`);
  for (const row of report.skipped) lines.push(`skipped ${row.kind} ${row.source_id} "${row.name}": ${row.reason}${row.detail ? ` (${row.detail})` : ''}`);
  for (const row of report.errors) lines.push(`error ${row.kind} ${row.source_id} "${row.name}": ${row.message}`);
  return lines;
}
