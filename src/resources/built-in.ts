import type { ResourceRecord } from '../repositories/resources.js';

/**
 * The one scope of Latchkey's own REST API: a token carrying it acts as the person who
 * granted it (or, from client_credentials, as the client alone) on /api/ and /auth/me/.
 */
export const API_SCOPE = 'api';

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
    scopes: [API_SCOPE],
    accessTokenTtl: API_RESOURCE_TTL,
    accessTokenFormat: 'jwt',
    builtIn: true,
    createdAt: null,
    updatedAt: null,
  };
}
