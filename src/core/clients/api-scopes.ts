import { API_SCOPES, isApiScope, type ApiScope } from '../resources/built-in.js';

/**
 * The client metadata property that lists, space-separated like `scope`, the scopes of
 * Latchkey's REST API a client may ask for. Only staff set it (admin pages, REST, CLI);
 * dynamic registration may not, so no app can grant itself access to people's accounts.
 */
export const API_SCOPES_METADATA = 'api_scopes';

/** The API scopes a client's metadata allows (none when the property is absent). */
export function clientApiScopes(metadata: Record<string, unknown>): ReadonlySet<ApiScope> {
  const value = metadata[API_SCOPES_METADATA];
  if (typeof value !== 'string') return new Set();
  return new Set(value.split(' ').filter(isApiScope));
}

/** Why a value cannot be a client's `api_scopes`, or null when it can. */
export function apiScopesProblem(value: unknown): string | null {
  if (value === undefined) return null;
  if (typeof value !== 'string') return `${API_SCOPES_METADATA} must be a space-separated string`;
  const unknown = value.split(' ').filter((scope) => scope && !isApiScope(scope));
  return unknown.length ? `${API_SCOPES_METADATA} may only contain ${API_SCOPES.join(', ')} (not ${unknown.join(', ')})` : null;
}
