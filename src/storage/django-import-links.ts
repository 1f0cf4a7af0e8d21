import type { Knex } from 'knex';

/** What `import django` made from one Django row. */
export interface ImportLink {
  targetId: string;
  /** SHA-256 of the source value last copied (a user's password column), when it matters. */
  sourceDigest: string | null;
}

/**
 * `resource`: the Django site's API resource (source id: its identifier); `grant`: the grant
 * of one user to one application (source id `<user id>:<application id>`); `access_token`,
 * `refresh_token`: DOT token rows brought by `--tokens` (target: their grant).
 */
export type ImportLinkKind = 'user' | 'client' | 'group' | 'resource' | 'grant' | 'access_token' | 'refresh_token';

interface LinkRow {
  kind: string;
  source_id: string;
  target_id: string;
  source_digest: string | null;
  imported_at: number;
}

export type ImportLinkRepository = ReturnType<typeof createImportLinkRepository>;

/** SQL for django_import_links: Django primary key → the Latchkey row made from it. */
export function createImportLinkRepository(knex: Knex) {
  const table = () => knex<LinkRow>('django_import_links');
  return {
    async find(kind: ImportLinkKind, sourceId: string): Promise<ImportLink | undefined> {
      const row = await table().where({ kind, source_id: sourceId }).first();
      return row ? { targetId: row.target_id, sourceDigest: row.source_digest } : undefined;
    },

    /** Whether some Django row was imported into this Latchkey row. */
    async isTarget(kind: ImportLinkKind, targetId: string): Promise<boolean> {
      return (await table().where({ kind, target_id: targetId }).first('source_id')) !== undefined;
    },

    /** Every Latchkey row of this kind that came from Django. */
    async targets(kind: ImportLinkKind): Promise<string[]> {
      const rows = await table().where({ kind }).select('target_id');
      return rows.map((r) => r.target_id);
    },

    async save(kind: ImportLinkKind, sourceId: string, link: ImportLink): Promise<void> {
      await table()
        .insert({ kind, source_id: sourceId, target_id: link.targetId, source_digest: link.sourceDigest, imported_at: Date.now() })
        .onConflict(['kind', 'source_id'])
        .merge(['target_id', 'source_digest', 'imported_at']);
    },
  };
}
