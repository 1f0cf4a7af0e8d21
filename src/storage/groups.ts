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

/** A member of a group, as the group's page and the REST API list them. */
export interface GroupMember {
  id: number;
  username: string;
}

/** Another group already has the name (the unique index settles races between writers). */
export class DuplicateGroupNameError extends Error {
  constructor() {
    super('A group with that name already exists.');
    this.name = 'DuplicateGroupNameError';
  }
}

function rethrowDuplicate(error: unknown): never {
  if (error instanceof Error && /unique|duplicate/i.test(error.message)) throw new DuplicateGroupNameError();
  throw error;
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
      const [row] = (await groups().insert({ name, created_at: now, updated_at: now }).returning('*').catch(rethrowDuplicate)) as GroupRow[];
      const id = Number(row?.id);
      await this.setPermissions(id, permissions);
      return (await this.findById(id)) as Group;
    },

    async rename(id: number, name: string): Promise<void> {
      await groups().where({ id }).update({ name, updated_at: Date.now() }).catch(rethrowDuplicate);
    },

    /** A page of groups by name, with the total. */
    async list({ offset, limit }: { offset: number; limit: number }): Promise<{ count: number; groups: Group[] }> {
      const rows = (await groups().orderBy('name').orderBy('id').offset(offset).limit(limit).select('*')) as GroupRow[];
      const found: Group[] = [];
      for (const row of rows) found.push((await withPermissions(row)) as Group);
      return { count: await this.count(), groups: found };
    },

    /** Every group by name (for the tick boxes of a user's page). */
    async all(): Promise<Group[]> {
      return (await this.list({ offset: 0, limit: 10_000 })).groups;
    },

    /** Deletes the group; its permissions and memberships go with it. False when there was none. */
    async delete(id: number): Promise<boolean> {
      return (await groups().where({ id }).delete()) > 0;
    },

    /** The group's members by username. */
    async members(groupId: number): Promise<GroupMember[]> {
      const rows = (await knex('user_groups')
        .join('users', 'users.id', 'user_groups.user_id')
        .where('user_groups.group_id', groupId)
        .orderBy('users.username')
        .select({ id: 'users.id', username: 'users.username' })) as Array<{ id: unknown; username: string }>;
      return rows.map((r) => ({ id: Number(r.id), username: r.username }));
    },

    /** Adds the user to the group; false when already a member. */
    async addMember(groupId: number, userId: number): Promise<boolean> {
      const inserted = (await knex('user_groups').insert({ user_id: userId, group_id: groupId }).onConflict(['user_id', 'group_id']).ignore().returning('user_id')) as unknown[];
      return inserted.length > 0;
    },

    /** Removes the user from the group; false when not a member. */
    async removeMember(groupId: number, userId: number): Promise<boolean> {
      return (await knex('user_groups').where({ user_id: userId, group_id: groupId }).delete()) > 0;
    },

    /** The ids of the user's groups. */
    async idsForUser(userId: number): Promise<number[]> {
      const rows = (await knex('user_groups').where({ user_id: userId }).select('group_id')) as Array<{ group_id: unknown }>;
      return rows.map((r) => Number(r.group_id));
    },

    /** The user's groups (id and name) by name. */
    async forUser(userId: number): Promise<Array<{ id: number; name: string }>> {
      const rows = (await knex('user_groups').join('groups', 'groups.id', 'user_groups.group_id').where('user_groups.user_id', userId).orderBy('groups.name').select('groups.id', 'groups.name')) as Array<{ id: unknown; name: string }>;
      return rows.map((r) => ({ id: Number(r.id), name: r.name }));
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
