import type { Knex } from 'knex';
import { inSavepoint } from '../../storage/transactions.js';
import { createImportLinkRepository } from '../../storage/django-import-links.js';
import type { DjangoGroupRow, DjangoUserRow } from '../../storage/django-source.js';
import { createGroupRepository } from '../../storage/groups.js';
import { createUserPermissionRepository } from '../../storage/user-permissions.js';
import type { ImportReport, SkipReason } from './import-report.js';

const sameList = (a: string[], b: string[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Brings auth_group into Latchkey's groups (name and permissions), one savepoint per row,
 * idempotent like the users. Returns Latchkey's group id for each Django group id imported.
 */
export async function importDjangoGroups(trx: Knex.Transaction, rows: DjangoGroupRow[], report: ImportReport): Promise<Map<string, number>> {
  report.groups.found = rows.length;
  const imported = new Map<string, number>();
  for (const row of rows) {
    try {
      const outcome = await inSavepoint(trx, async (savepoint) => {
        const groups = createGroupRepository(savepoint);
        const links = createImportLinkRepository(savepoint);
        const link = await links.find('group', row.id);
        const existing = link ? await groups.findById(Number(link.targetId)) : undefined;
        if (link && !existing) return 'deleted_in_latchkey' as SkipReason;
        const named = await groups.findByName(row.name);
        if (named && named.id !== existing?.id) return 'group_name_taken' as SkipReason;
        if (!existing) {
          const group = await groups.create(row.name, row.permissions);
          await links.save('group', row.id, { targetId: String(group.id), sourceDigest: null });
          imported.set(row.id, group.id);
          return 'created';
        }
        imported.set(row.id, existing.id);
        if (existing.name === row.name && sameList(existing.permissions, row.permissions)) return 'unchanged';
        if (existing.name !== row.name) await groups.rename(existing.id, row.name);
        if (!sameList(existing.permissions, row.permissions)) await groups.setPermissions(existing.id, row.permissions);
        return 'updated';
      });
      if (outcome === 'created' || outcome === 'updated' || outcome === 'unchanged') {
        report.groups[outcome] += 1;
      } else {
        report.groups.skipped += 1;
        report.skipped.push({ kind: 'group', source_id: row.id, name: row.name, reason: outcome });
      }
    } catch (error) {
      imported.delete(row.id);
      report.errors.push({ kind: 'group', source_id: row.id, name: row.name, message: (error as Error).message.split('\n')[0] ?? '' });
    }
  }
  return imported;
}

/**
 * Makes each imported user a member of the imported groups Django has them in, and of no
 * other group that came from Django; groups made in Latchkey keep their members.
 */
export async function importDjangoMemberships(
  trx: Knex.Transaction,
  users: DjangoUserRow[],
  memberships: Map<string, string[]>,
  imported: Map<string, number>,
  report: ImportReport,
): Promise<void> {
  const links = createImportLinkRepository(trx);
  const groups = createGroupRepository(trx);
  const fromDjango = (await links.targets('group')).map(Number);
  for (const user of users) {
    const link = await links.find('user', user.id);
    if (!link) continue;
    const groupIds = (memberships.get(user.id) ?? []).flatMap((id) => {
      const target = imported.get(id);
      return target === undefined ? [] : [target];
    });
    await groups.setMembershipsWithin(Number(link.targetId), fromDjango, groupIds);
    report.memberships += groupIds.length;
  }
}

/**
 * Gives each imported user exactly the permissions Django gave them directly (a user Django
 * gave none has none), so nothing the site granted is lost; they are not in any token.
 */
export async function importDjangoDirectPermissions(trx: Knex.Transaction, users: DjangoUserRow[], direct: Map<string, string[]>, report: ImportReport): Promise<void> {
  const links = createImportLinkRepository(trx);
  const permissions = createUserPermissionRepository(trx);
  for (const user of users) {
    const link = await links.find('user', user.id);
    if (!link) continue;
    const granted = direct.get(user.id) ?? [];
    await permissions.setForUser(Number(link.targetId), granted);
    report.user_permissions += granted.length;
  }
}
