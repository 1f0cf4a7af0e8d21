/** What `import django` did (or, with --dry-run, would do): the same shape either way. */
export interface ImportReport {
  /** The source database (a file path, or postgres://host:port/db without credentials). */
  source: string;
  dry_run: boolean;
  users: { found: number; created: number; updated: number; unchanged: number; skipped: number };
  /** Imported users by the format of their password: `pbkdf2_sha256`, `unusable`, `unsupported:md5`, ... */
  passwords: Record<string, number>;
  /** Found in the source, not imported by this version (see README "Moving from Django"). */
  not_imported: Record<string, number>;
  /** Rows left out on purpose, each with why. */
  skipped: SkippedRow[];
  /** Rows that failed unexpectedly; any makes the command exit 1. */
  errors: Array<{ kind: string; source_id: string; name: string; message: string }>;
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
  | 'deleted_in_latchkey';

export interface SkippedRow {
  kind: 'user';
  source_id: string;
  name: string;
  reason: SkipReason;
}

export function emptyReport(source: string, dryRun: boolean): ImportReport {
  return {
    source,
    dry_run: dryRun,
    users: { found: 0, created: 0, updated: 0, unchanged: 0, skipped: 0 },
    passwords: {},
    not_imported: {},
    skipped: [],
    errors: [],
  };
}

/** The report in a few lines for a terminal. */
export function reportLines(report: ImportReport): string[] {
  const { users } = report;
  const lines = [
    `${report.dry_run ? 'dry run (nothing changed): ' : ''}imported from ${report.source}`,
    `users: ${users.found} found, ${users.created} created, ${users.updated} updated, ${users.unchanged} unchanged, ${users.skipped} skipped`,
  ];
  const formats = Object.entries(report.passwords).map(([format, n]) => `${format} ${n}`);
  if (formats.length) lines.push(`passwords: ${formats.join(', ')}`);
  for (const [what, n] of Object.entries(report.not_imported)) lines.push(`not imported yet: ${n} ${what}`);
  for (const row of report.skipped) lines.push(`skipped ${row.kind} ${row.source_id} "${row.name}": ${row.reason}`);
  for (const row of report.errors) lines.push(`error ${row.kind} ${row.source_id} "${row.name}": ${row.message}`);
  return lines;
}
