import type { Knex } from 'knex';

export type UserPermissionRepository = ReturnType<typeof createUserPermissionRepository>;

/** SQL for the permissions given to accounts directly (Django's user_permissions). */
export function createUserPermissionRepository(knex: Knex) {
  return {
    /** The user's own permissions (`app_label.codename`), sorted. */
    async forUser(userId: number): Promise<string[]> {
      const rows = (await knex('user_permissions').where({ user_id: userId }).orderBy('permission').select('permission')) as Array<{ permission: string }>;
      return rows.map((r) => r.permission);
    },

    /** Replaces the user's own permissions with `permissions`. */
    async setForUser(userId: number, permissions: string[]): Promise<void> {
      await knex('user_permissions').where({ user_id: userId }).delete();
      const unique = [...new Set(permissions)];
      if (unique.length) await knex('user_permissions').insert(unique.map((permission) => ({ user_id: userId, permission })));
    },
  };
}
