import type { User } from '../../storage/users.js';

/**
 * The provider's own (OpenID Connect) scopes. API resources bring their own scopes and may
 * not reuse these names (the consent page and the token's scope would be ambiguous).
 */
export const OIDC_SCOPES: readonly string[] = ['openid', 'offline_access', 'profile', 'email', 'groups'];

/** Which claims each scope releases (OIDC Core 5.4). */
export const SCOPE_CLAIMS = {
  openid: ['sub'],
  profile: ['preferred_username', 'name', 'given_name', 'family_name', 'updated_at'],
  email: ['email', 'email_verified'],
  /** The names of the person's groups (imported from Django's auth_group), as Keycloak's groups mapper. */
  groups: ['groups'],
} as const;

/** Every claim a user can have, whatever the scope; the provider filters by scope/claims. */
export function claimsOf(user: User, groups: string[] = []): Record<string, unknown> {
  const name = [user.firstName, user.lastName].filter(Boolean).join(' ');
  return {
    sub: String(user.id),
    preferred_username: user.username,
    ...(name ? { name } : {}),
    ...(user.firstName ? { given_name: user.firstName } : {}),
    ...(user.lastName ? { family_name: user.lastName } : {}),
    updated_at: Math.floor(user.updatedAt / 1000),
    ...(user.email ? { email: user.email, email_verified: user.emailVerified } : {}),
    groups,
  };
}
