import { z } from 'zod';
import { requiredString, pathId, timestamp } from './schemas.js';

export const PasswordChangeSchema = z
  .looseObject({
    current_password: requiredString().meta({ writeOnly: true }),
    new_password: requiredString().meta({ writeOnly: true, description: 'The password policy applies; must differ from the current one.' }),
    otp: z.string().optional().meta({ writeOnly: true, description: 'For accounts with two-factor authentication.' }),
  })
  // Other fields are refused by the service, one message each.
  .meta({ additionalProperties: false });

export const ConnectedAppSchema = z
  .object({
    id: z.string().meta({ description: 'The grant id.' }),
    client_id: z.string(),
    client_name: z.string(),
    scopes: z.array(z.string()),
    resources: z.record(z.string(), z.array(z.string())).meta({ description: 'API resources (RFC 8707) and the scopes granted for each.' }),
    granted_at: timestamp(),
    expires_at: timestamp().nullable(),
  })
  .meta({ id: 'ConnectedApp' });

export const LoginSessionSchema = z
  .object({
    id: z.string(),
    signed_in_at: timestamp(),
    expires_at: timestamp().nullable(),
    applications: z.array(z.object({ client_id: z.string(), client_name: z.string() })),
    methods: z.array(z.string()).meta({ description: 'amr values, e.g. pwd' }),
    browser: z.string().nullable().meta({ description: 'The browser in words, e.g. "Firefox on Linux", as of its sign-in or last use.' }),
    ip: z.string().nullable().meta({ description: 'The IP address it signed in from or was last used from.' }),
    current: z.boolean().meta({ description: 'The session the calling token came from.' }),
  })
  .meta({ id: 'LoginSession' });

export const ConnectedAppListSchema = z.object({ results: z.array(ConnectedAppSchema) });
export const LoginSessionListSchema = z.object({ results: z.array(LoginSessionSchema) });

export const GrantIdParams = z.object({ id: pathId('The grant id.') });
export const SessionIdParams = z.object({ id: pathId('The session id.') });
