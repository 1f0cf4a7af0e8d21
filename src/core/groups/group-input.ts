import { fieldCollector } from '../errors.js';

/** As Django's auth_group.name. */
export const GROUP_NAME_MAX = 150;
/** More than any Django site grants one group; a bound on what one request stores. */
export const GROUP_PERMISSIONS_MAX = 500;
/**
 * Django's `app_label.codename`: an app label is a Python identifier, a codename is at most
 * 100 characters of letters, digits and underscores (what `makemigrations` writes).
 */
const PERMISSION = /^[A-Za-z_][A-Za-z0-9_]{0,99}\.[A-Za-z0-9_]{1,100}$/;
const CONTROL = /\p{Cc}/u;

export interface GroupInput {
  name?: string;
  permissions?: string[];
}

export interface CheckedGroup {
  name: string;
  permissions: string[];
}

/** Checks a whole group (the current one with the changes applied): per-field problems, or the group with its permissions sorted and unique. */
export function checkGroup(input: { name: string | undefined; permissions: string[] }): CheckedGroup {
  const problems = fieldCollector();
  const name = input.name?.trim() ?? '';
  if (!name) problems.add('name', 'required');
  else if (name.length > GROUP_NAME_MAX) problems.add('name', 'too_long', { max: GROUP_NAME_MAX });
  else if (CONTROL.test(name)) problems.add('name', 'control_characters');
  if (input.permissions.length > GROUP_PERMISSIONS_MAX) problems.add('permissions', 'too_many_permissions', { max: GROUP_PERMISSIONS_MAX });
  else for (const permission of input.permissions) if (!PERMISSION.test(permission)) problems.add('permissions', 'permission_invalid', { permission: permission.slice(0, 210) });
  problems.throwIfAny();
  return { name, permissions: [...new Set(input.permissions)].sort() };
}

/** Permissions typed one per line or separated by commas or spaces (the admin page's text box). */
export function permissionsFromText(text: string): string[] {
  return text.split(/[\s,]+/).filter(Boolean);
}
