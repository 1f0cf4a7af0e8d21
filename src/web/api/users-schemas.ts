import { z } from 'zod';
import { USER_ORDERING_FIELDS, type UserOrderingField } from '../../storage/users.js';
import { MUST_BE_BOOLEAN, MUST_BE_STRING, optionalQueryString, pageOf, PageQuery, pathId, timestamp } from './schemas.js';

/** A user as every REST route shows one (userJson): never a password or its hash. */
export const UserSchema = z
  .object({
    id: z.int().meta({ readOnly: true }),
    username: z.string().max(150),
    email: z.string().meta({ description: 'The address in use ("" when there is none).' }),
    first_name: z.string().max(150),
    last_name: z.string().max(150),
    is_active: z.boolean().meta({ description: 'Staff only.' }),
    is_staff: z.boolean().meta({ description: 'Staff only.' }),
    is_superuser: z.boolean().meta({ description: 'Superusers only.' }),
    email_verified: z.boolean().meta({ readOnly: true }),
    pending_email: z.string().nullable().meta({ readOnly: true, description: 'An address asked for and not verified yet; `email` stays in use until then.' }),
    date_joined: timestamp().meta({ readOnly: true }),
    last_login: timestamp().nullable().meta({ readOnly: true }),
    updated_at: timestamp().meta({ readOnly: true }),
    groups: z
      .array(z.object({ id: z.int(), name: z.string() }))
      .optional()
      .meta({ readOnly: true, description: "Only on GET /api/users/<id>/ read by staff: the user's groups by name (change them at /api/groups/<id>/members/)." }),
  })
  .meta({ id: 'User' });

/** What a userinfo token reads at /auth/me/: the id, names with `profile`, the address with `email`. */
export const ScopedUserSchema = z
  .object({
    id: z.int(),
    username: z.string().optional(),
    first_name: z.string().optional(),
    last_name: z.string().optional(),
    updated_at: timestamp().optional(),
    email: z.string().optional(),
    email_verified: z.boolean().optional(),
  })
  .meta({ id: 'ScopedUser', description: 'GET /auth/me/ with a userinfo token: what its OpenID scopes allow, as at /o/me.' });

export const UserPageSchema = pageOf('UserPage', UserSchema);

// Shapes only: which fields a caller may write, the username and password rules and
// uniqueness are the user service's (src/core/accounts), which answers for unknown fields too.
const text = (meta: { description?: string; writeOnly?: boolean } = {}) => z.string({ error: MUST_BE_STRING }).nullable().optional().meta(meta);
const flag = (description: string) => z.boolean({ error: MUST_BE_BOOLEAN }).optional().meta({ description });

export const UserWriteSchema = z
  .looseObject({
    username: text({ description: 'Letters, digits and @ . + - _, at most 150 characters; required on create.' }),
    email: text({ description: 'Required on create (POST /api/users/); "" or null removes it.' }),
    first_name: text({ description: 'At most 150 characters.' }),
    last_name: text({ description: 'At most 150 characters.' }),
    password: text({ description: 'Required on create; the password policy applies.', writeOnly: true }),
    current_password: text({ description: 'Required to change your own email or password.', writeOnly: true }),
    otp: text({ description: 'With current_password, for accounts with two-factor authentication.', writeOnly: true }),
    is_active: flag('Staff only.'),
    is_staff: flag('Staff only.'),
    is_superuser: flag('Superusers only.'),
  })
  // Unknown and read-only fields are refused (400, or 403 for privileges), by the service.
  .meta({ id: 'UserWrite', additionalProperties: false });

export const UserDeleteSchema = z
  .object({
    current_password: z.string({ error: MUST_BE_STRING }).optional().meta({ description: 'Required to delete your own account.', writeOnly: true }),
    otp: z.string({ error: MUST_BE_STRING }).optional().meta({ description: 'With current_password, for accounts with two-factor authentication.', writeOnly: true }),
  })
  .meta({ id: 'UserDelete' });

const ORDERING_HINT = `${USER_ORDERING_FIELDS.join(', ')} (prefix - for descending)`;

/** `?ordering=-date_joined,username` as DRF's OrderingFilter reads it. */
const ordering = z
  .string({ error: 'ordering must be given once.' })
  .optional()
  .transform((value, check) => {
    if (value === undefined || value === '') return [];
    const out: Array<{ field: UserOrderingField; descending: boolean }> = [];
    for (const part of value.split(',')) {
      const descending = part.startsWith('-');
      const field = (descending ? part.slice(1) : part).trim();
      if (!(USER_ORDERING_FIELDS as readonly string[]).includes(field)) {
        check.addIssue({ code: 'custom', message: `Cannot order by "${field}"; use ${ORDERING_HINT}.`, input: value });
        return z.NEVER;
      }
      out.push({ field: field as UserOrderingField, descending });
    }
    return out;
  })
  .meta({ description: `Comma-separated fields: ${ORDERING_HINT}.` });

export const UserListQuery = PageQuery.extend({
  search: optionalQueryString('Substring of username, email or names (case-insensitive).'),
  ordering,
});

export const UserIdParams = z.object({ id: pathId("The user's id (an integer).") });
