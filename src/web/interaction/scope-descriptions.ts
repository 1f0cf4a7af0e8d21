import type { MessageKey, Translator } from '../../locales/i18n.js';
import type { ApiScope } from '../../core/resources/built-in.js';

/** What each scope lets an application do, in words a person can judge on the consent page. */
const SCOPE_MESSAGES: Record<string, MessageKey> = {
  openid: 'scope.openid',
  profile: 'scope.profile',
  email: 'scope.email',
  offline_access: 'scope.offline_access',
  groups: 'scope.groups',
};

/** Scopes of the built-in REST API resource, in the same spirit. */
const API_MESSAGES: Record<ApiScope, MessageKey> = {
  'users:read': 'scope.api.users_read',
  'users:write': 'scope.api.users_write',
  account: 'scope.api.account',
  admin: 'scope.api.admin',
};

/** Names a person understands for the claims an application may ask for one by one. */
const CLAIM_MESSAGES: Record<string, MessageKey> = {
  preferred_username: 'claim.preferred_username',
  name: 'claim.name',
  given_name: 'claim.given_name',
  family_name: 'claim.family_name',
  updated_at: 'claim.updated_at',
  email: 'claim.email',
  email_verified: 'claim.email_verified',
  groups: 'claim.groups',
};

export function describeScopes(scopes: Iterable<string>, i18n: Translator): Array<{ scope: string; description: string }> {
  return [...new Set(scopes)].map((scope) => {
    const key = Object.hasOwn(SCOPE_MESSAGES, scope) ? SCOPE_MESSAGES[scope] : undefined;
    return { scope, description: key ? i18n.t(key) : i18n.t('scope.other', { scope }) };
  });
}

/**
 * What an application may do at one API resource (RFC 8707). Only the built-in REST API has
 * words for its scopes; other resources show their scope names, under the API's name.
 */
export function describeResourceScopes(scopes: Iterable<string>, { builtIn }: { builtIn: boolean }, i18n: Translator): Array<{ scope: string; description: string }> {
  return [...new Set(scopes)].map((scope) => {
    const key = builtIn && Object.hasOwn(API_MESSAGES, scope) ? API_MESSAGES[scope as ApiScope] : undefined;
    return { scope, description: key ? i18n.t(key) : i18n.t('scope.other', { scope }) };
  });
}

/** Words for the claims an application asked for through the claims parameter. */
export function describeClaims(claims: Iterable<string>, i18n: Translator): string[] {
  return [...new Set(claims)]
    .filter((claim) => claim !== 'sub')
    .map((claim) => {
      const key = Object.hasOwn(CLAIM_MESSAGES, claim) ? CLAIM_MESSAGES[claim] : undefined;
      return key ? i18n.t(key) : claim;
    });
}
