import type { Knex } from 'knex';
import { actorEntry, type AuditActor, type AuditLog } from '../audit/audit-log.js';
import { DomainError } from '../errors.js';
import { createGroupRepository, DuplicateGroupNameError, type Group, type GroupMember, type GroupRepository } from '../../storage/groups.js';
import { inTransaction } from '../../storage/transactions.js';
import type { UserRepository } from '../../storage/users.js';
import { checkGroup, type GroupInput } from './group-input.js';

const notFound = () => new DomainError('group_not_found');
const taken = () => new DomainError('group_name_taken');

/** How a group is described to the REST API. */
export function groupJson(group: Group) {
  return {
    id: group.id,
    name: group.name,
    permissions: group.permissions,
    created_at: new Date(group.createdAt).toISOString(),
    updated_at: new Date(group.updatedAt).toISOString(),
  };
}

/** An id from a path or a form: anything but a whole number names no group. */
const idOf = (id: number | string) => (typeof id === 'number' ? id : /^\d{1,15}$/.test(id) ? Number(id) : NaN);

/**
 * Groups for the admin pages and the REST API (staff only: the edges check who calls):
 * names unique (409), permissions as Django writes them, memberships, and the audit log.
 *
 * Tokens: ID tokens, userinfo and new access tokens read the groups when they are made, so
 * an edit shows in every token issued after it. An access token already issued keeps the
 * names it was issued with (introspection answers them) until it expires: like any claim of
 * a self-contained JWT, it is a snapshot; revoke the person's tokens to end it sooner.
 */
export function createGroupService({ knex, groups, users, audit }: { knex: Knex; groups: GroupRepository; users: UserRepository; audit: AuditLog }) {
  const record = (event: string, group: Pick<Group, 'id' | 'name'>, by: AuditActor | undefined, details: Record<string, unknown> = {}) =>
    audit.record(event, { ...actorEntry(by), targetType: 'group', targetId: group.id, details: { name: group.name, ...details } });

  async function get(id: number | string): Promise<Group> {
    const numeric = idOf(id);
    const found = Number.isSafeInteger(numeric) ? await groups.findById(numeric) : undefined;
    if (!found) throw notFound();
    return found;
  }

  async function memberOf(id: number | string) {
    const numeric = idOf(id);
    const user = Number.isSafeInteger(numeric) ? await users.findById(numeric) : undefined;
    if (!user) throw new DomainError('user_not_found');
    return user;
  }

  /** Runs a write in one transaction; a name another group holds is a 409, however it is noticed. */
  async function write<T>(fn: (repo: GroupRepository) => Promise<T>): Promise<T> {
    try {
      return await inTransaction(knex, (trx) => fn(createGroupRepository(trx)));
    } catch (error) {
      if (error instanceof DuplicateGroupNameError) throw taken();
      throw error;
    }
  }

  return {
    get,

    async list({ offset, limit }: { offset: number; limit: number }): Promise<{ count: number; groups: Group[] }> {
      return groups.list({ offset, limit });
    },

    all: () => groups.all(),

    async create(input: GroupInput, by?: AuditActor): Promise<Group> {
      const checked = checkGroup({ name: input.name, permissions: input.permissions ?? [] });
      const created = await write(async (repo) => {
        if (await repo.findByName(checked.name)) throw taken();
        return repo.create(checked.name, checked.permissions);
      });
      await record('group.created', created, by, { permissions: created.permissions });
      return created;
    },

    /** Changes the fields given (the permissions are replaced as a whole). */
    async update(id: number | string, changes: GroupInput, by?: AuditActor): Promise<Group> {
      const current = await get(id);
      const checked = checkGroup({ name: changes.name ?? current.name, permissions: changes.permissions ?? current.permissions });
      const updated = await write(async (repo) => {
        const holder = await repo.findByName(checked.name);
        if (holder && holder.id !== current.id) throw taken();
        if (checked.name !== current.name) await repo.rename(current.id, checked.name);
        if (changes.permissions !== undefined) await repo.setPermissions(current.id, checked.permissions);
        const after = await repo.findById(current.id);
        if (!after) throw notFound();
        return after;
      });
      const fields = Object.keys(changes).filter((k) => changes[k as keyof GroupInput] !== undefined);
      await record('group.updated', updated, by, {
        fields,
        ...(checked.name !== current.name ? { previous_name: current.name } : {}),
        ...(changes.permissions !== undefined ? { permissions: updated.permissions, previous_permissions: current.permissions } : {}),
      });
      return updated;
    },

    async remove(id: number | string, by?: AuditActor): Promise<void> {
      const group = await get(id);
      const members = (await groups.members(group.id)).length;
      if (!(await groups.delete(group.id))) throw notFound();
      await record('group.deleted', group, by, { members });
    },

    async members(id: number | string): Promise<GroupMember[]> {
      return groups.members((await get(id)).id);
    },

    /** Adds a user (by id) to the group; adding a member again changes nothing and is not audited. */
    async addMember(id: number | string, userId: number | string, by?: AuditActor): Promise<GroupMember> {
      const group = await get(id);
      const user = await memberOf(userId);
      if (await groups.addMember(group.id, user.id)) await record('group.member_added', group, by, { user_id: user.id, username: user.username });
      return { id: user.id, username: user.username };
    },

    /** Removes a user from the group: 404 when the user is not a member. */
    async removeMember(id: number | string, userId: number | string, by?: AuditActor): Promise<void> {
      const group = await get(id);
      const user = await memberOf(userId);
      if (!(await groups.removeMember(group.id, user.id))) throw new DomainError('member_not_found');
      await record('group.member_removed', group, by, { user_id: user.id, username: user.username });
    },

    /** The user's groups, id and name, by name. */
    groupsOf: (userId: number) => groups.forUser(userId),

    /** Makes the user a member of exactly `groupIds` (the tick boxes of the user's page), each change audited. */
    async setGroupsOf(userId: number | string, groupIds: Array<number | string>, by?: AuditActor): Promise<void> {
      const user = await memberOf(userId);
      const wanted = new Set<number>();
      for (const id of groupIds) wanted.add((await get(id)).id);
      const current = new Set(await groups.idsForUser(user.id));
      for (const id of wanted) if (!current.has(id)) await this.addMember(id, user.id, by);
      for (const id of current) if (!wanted.has(id)) await this.removeMember(id, user.id, by);
    },
  };
}

export type GroupService = ReturnType<typeof createGroupService>;
