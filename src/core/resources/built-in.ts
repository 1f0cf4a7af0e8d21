import type { ResourceRecord } from '../../storage/resources.js';

/**
 * The scopes of Latchkey's own REST API (`${PUBLIC_URL}/api`). A token for the API acts as
 * the person who granted it (or, from client_credentials, as the client alone), and only
 * within its scopes; what each allows is what that person (or client) may do anyway:
 * - `users:read`: read the user records the person may see (their own; everyone's for staff).
 * - `users:write`: create, change and delete those records.
 * - `account`: the person's account-center actions at /api/me/ (password, two-factor,
 *   connected applications, sessions).
 * - `admin`: staff administration (applications, API resources, the audit log).
 * A client gets only the API scopes staff registered it for (its `api_scopes`).
 */
export const API_SCOPES = ['users:read', 'users:write', 'account', 'admin'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

export const isApiScope = (scope: string): scope is ApiScope => (API_SCOPES as readonly string[]).includes(scope);

/** What each API scope allows, for people (OpenAPI, docs; the consent page has them translated). */
export const API_SCOPE_DESCRIPTIONS: Record<ApiScope, string> = {
  'users:read': 'Read the user accounts the person may see (their own; every account for staff).',
  'users:write': 'Create, change and delete the user accounts the person may manage.',
  account: "Manage the person's own account: password, two-factor authentication, connected applications and sessions.",
  admin: 'Staff administration: applications, API resources and the audit log.',
};

/** The built-in resource has no row; it is listed with this id. */
export const BUILT_IN_RESOURCE_ID = 0;

/**
 * Lifetime of the REST API's JWT access tokens. Short, because a JWT cannot be revoked: a
 * revoked grant stops refreshing at once, the token it already holds works until it expires
 * (deactivated and deleted users are refused on every request regardless).
 */
export const API_RESOURCE_TTL = 15 * 60;

/** The audience of every token our REST API accepts (and of the /api/token/ JWTs). */
export const apiAudience = (publicUrl: string) => `${publicUrl}/api`;

/** An API resource as the service hands it out: a stored one, or the built-in one. */
export interface Resource extends Omit<ResourceRecord, 'createdAt' | 'updatedAt'> {
  builtIn: boolean;
  /** Null for the built-in resource, which is never stored. */
  createdAt: number | null;
  updatedAt: number | null;
}

/** Latchkey's REST API as a resource: read-only, follows PUBLIC_URL. */
export function builtInApiResource(publicUrl: string): Resource {
  return {
    id: BUILT_IN_RESOURCE_ID,
    identifier: apiAudience(publicUrl),
    name: 'Latchkey REST API',
    scopes: [...API_SCOPES],
    accessTokenTtl: API_RESOURCE_TTL,
    accessTokenFormat: 'jwt',
    builtIn: true,
    createdAt: null,
    updatedAt: null,
  };
}
