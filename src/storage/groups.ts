import type { Knex } from 'knex';

export interface Group {
  id: number;
  name: string;
  /** Django-style `app_label.codename`, sorted. */
  permissions: string[];
  createdAt: number;
  updatedAt: number;
}

interface GroupRow {
  id: number;
  name: string;
  created_at: number;
  updated_at: number;
}

export type GroupRepository = ReturnType<typeof createGroupRepository>;

/** SQL for groups, their permissions and their members. */
export function createGroupRepository(knex: Knex) {
  const groups = () => knex<GroupRow>('groups');

  async function permissionsOf(groupId: number): Promise<string[]> {
    const rows = (await knex('group_permissions').where({ group_id: groupId }).orderBy('permission').select('permission')) as Array<{ permission: string }>;
    return rows.map((r) => r.permission);
  }

  async function withPermissions(row: GroupRow | undefined): Promise<Group | undefined> {
    if (!row) return undefined;
    const id = Number(row.id);
    return { id, name: row.name, permissions: await permissionsOf(id), createdAt: Number(row.created_at), updatedAt: Number(row.updated_at) };
  }

  return {
    async findById(id: number): Promise<Group | undefined> {
      return withPermissions(await groups().where({ id }).first());
    },

    async findByName(name: string): Promise<Group | undefined> {
      return withPermissions(await groups().where({ name }).first());
    },

    async create(name: string, permissions: string[]): Promise<Group> {
      const now = Date.now();
      const [row] = (await groups().insert({ name, created_at: now, updated_at: now }).returning('*')) as GroupRow[];
      const id = Number(row?.id);
      await this.setPermissions(id, permissions);
      return (await this.findById(id)) as Group;
    },

    async rename(id: number, name: string): Promise<void> {
      await groups().where({ id }).update({ name, updated_at: Date.now() });
    },

    /** Replaces the group's permissions with `permissions`. */
    async setPermissions(id: number, permissions: string[]): Promise<void> {
      await knex('group_permissions').where({ group_id: id }).delete();
      const unique = [...new Set(permissions)];
      if (unique.length) await knex('group_permissions').insert(unique.map((permission) => ({ group_id: id, permission })));
      await groups().where({ id }).update({ updated_at: Date.now() });
    },

    /** The names of the user's groups, sorted. */
    async namesForUser(userId: number): Promise<string[]> {
      const rows = (await knex('user_groups').join('groups', 'groups.id', 'user_groups.group_id').where('user_groups.user_id', userId).orderBy('groups.name').select('groups.name')) as Array<{ name: string }>;
      return rows.map((r) => r.name);
    },

    /** Within `scope` (some groups' ids), makes the user a member of exactly `groupIds`; other memberships stay. */
    async setMembershipsWithin(userId: number, scope: number[], groupIds: number[]): Promise<void> {
      if (scope.length) await knex('user_groups').where({ user_id: userId }).whereIn('group_id', scope).delete();
      const unique = [...new Set(groupIds)];
      if (unique.length) await knex('user_groups').insert(unique.map((group_id) => ({ user_id: userId, group_id })));
    },

    async count(): Promise<number> {
      const row = (await groups().count({ n: '*' }).first()) as { n: unknown } | undefined;
      return Number(row?.n ?? 0);
    },
  };
}
