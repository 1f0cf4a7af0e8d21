import { z } from 'zod';
import type { GroupInput } from '../../core/groups/group-input.js';
import { GROUP_NAME_MAX } from '../../core/groups/group-input.js';
import { listOfStrings, MUST_BE_STRING, pageOf, pathId, REQUIRED, requiredOr, timestamp } from './schemas.js';

const PERMISSIONS = "Django's `app_label.codename`, sorted; what the group's members may do in the applications that read them.";

export const GroupSchema = z
  .object({
    id: z.int().meta({ readOnly: true }),
    name: z.string().max(GROUP_NAME_MAX),
    permissions: z.array(z.string()).meta({ description: PERMISSIONS }),
    created_at: timestamp().meta({ readOnly: true }),
    updated_at: timestamp().meta({ readOnly: true }),
  })
  .meta({ id: 'Group' });

export const GroupPageSchema = pageOf('GroupPage', GroupSchema);

export const GroupMemberSchema = z.object({ id: z.int(), username: z.string() }).meta({ id: 'GroupMember' });
export const GroupMemberPageSchema = pageOf('GroupMemberPage', GroupMemberSchema);

/** Shapes only: the group service checks the values (length, control characters, permission syntax). */
const groupWrite = {
  name: z.string({ error: MUST_BE_STRING }).optional().meta({ description: `Unique, at most ${GROUP_NAME_MAX} characters.` }),
  permissions: listOfStrings().optional().meta({ description: `${PERMISSIONS} Replaces the list.` }),
};

export const GroupWriteSchema = z.strictObject(groupWrite).meta({ id: 'GroupWrite' });
export const GroupCreateSchema = z
  .strictObject({ ...groupWrite, name: z.string({ error: requiredOr(MUST_BE_STRING) }).meta({ description: `Unique, at most ${GROUP_NAME_MAX} characters.` }) })
  .meta({ id: 'GroupCreate' });

export const GroupMemberAddSchema = z
  .strictObject({ user_id: z.int({ error: (issue) => (issue.input === undefined ? REQUIRED : 'Must be a user id (a whole number).') }) })
  .meta({ id: 'GroupMemberAdd' });

export const GroupIdParams = z.object({ id: pathId("The group's id (an integer).") });
export const GroupMemberParams = z.object({ id: pathId("The group's id (an integer)."), user_id: pathId("The member's user id (an integer).") });

/** The service's input from the fields sent. */
export function groupInputOf(body: z.output<typeof GroupWriteSchema>): GroupInput {
  const out: GroupInput = {};
  if (body.name !== undefined) out.name = body.name;
  if (body.permissions !== undefined) out.permissions = body.permissions;
  return out;
}
