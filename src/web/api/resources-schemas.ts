import { z } from 'zod';
import type { ResourceInput } from '../../core/resources/resource-input.js';
import { RESOURCE_TTL } from '../../core/tokens/lifetimes.js';
import { listOfStrings, pageOf, pathId, REQUIRED, timestamp } from './schemas.js';

const TTL = `Seconds, from ${RESOURCE_TTL.min} to ${RESOURCE_TTL.max} (default ${RESOURCE_TTL.default}).`;
const IDENTIFIER = "RFC 8707 resource indicator: the `resource` parameter, and the tokens' `aud`.";

export const ResourceSchema = z
  .object({
    id: z.int().min(0).meta({ readOnly: true, description: '0 for the built-in REST API resource.' }),
    identifier: z.string().max(512).meta({ description: IDENTIFIER }),
    name: z.string().max(512).meta({ description: 'At most 255 characters when given; without one, the identifier (up to 512).' }),
    scopes: z.array(z.string()).meta({ description: 'The only scopes tokens for this resource can carry.' }),
    access_token_ttl: z.int().min(RESOURCE_TTL.min).max(RESOURCE_TTL.max),
    access_token_format: z.enum(['jwt', 'opaque']),
    built_in: z.boolean().meta({ readOnly: true }),
    created_at: timestamp().nullable().meta({ readOnly: true }),
    updated_at: timestamp().nullable().meta({ readOnly: true }),
  })
  .meta({ id: 'Resource' });

export const ResourcePageSchema = pageOf('ResourcePage', ResourceSchema);

const IDENTIFIER_TYPE = 'Must be a string (an absolute URI).';

/** The writable fields with their JSON types; the resource service checks the values (URI rules, scope tokens, TTL range). */
const resourceWrite = {
  identifier: z
    .string({ error: IDENTIFIER_TYPE })
    .optional()
    .meta({ description: `${IDENTIFIER} Absolute http(s) URI without a fragment; required on create.` }),
  name: z.string({ error: 'Must be a string.' }).optional().meta({ description: 'Defaults to the identifier.' }),
  scopes: listOfStrings().optional().meta({ description: 'RFC 6749 scope tokens, not openid/profile/email/offline_access.' }),
  access_token_ttl: z.int({ error: 'Must be a whole number of seconds.' }).optional().meta({ description: TTL }),
  access_token_format: z.enum(['jwt', 'opaque'], { error: 'Must be "jwt" or "opaque".' }).optional().meta({ description: 'Default jwt.' }),
};

export const ResourceWriteSchema = z.strictObject(resourceWrite).meta({ id: 'ResourceWrite' });
export const ResourceCreateSchema = z
  .strictObject({
    ...resourceWrite,
    identifier: z.string({ error: (issue) => (issue.input === undefined ? REQUIRED : IDENTIFIER_TYPE) }).meta({ description: `${IDENTIFIER} Absolute http(s) URI without a fragment.` }),
  })
  .meta({ id: 'ResourceCreate' });

export const ResourceIdParams = z.object({ id: pathId('The resource id; 0 is the built-in REST API resource.') });

/** The service's input from the fields sent. */
export function resourceInputOf(body: z.output<typeof ResourceWriteSchema>): ResourceInput {
  const out: ResourceInput = {};
  if (body.identifier !== undefined) out.identifier = body.identifier;
  if (body.name !== undefined) out.name = body.name;
  if (body.scopes !== undefined) out.scopes = body.scopes;
  if (body.access_token_ttl !== undefined) out.accessTokenTtl = body.access_token_ttl;
  if (body.access_token_format !== undefined) out.accessTokenFormat = body.access_token_format;
  return out;
}
