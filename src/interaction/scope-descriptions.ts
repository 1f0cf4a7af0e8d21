import { API_SCOPE } from '../resources/built-in.js';

/** What each scope lets an application do, in words a person can judge on the consent page. */
const DESCRIPTIONS: Record<string, string> = {
  openid: 'Sign you in with your Latchkey account',
  profile: 'See your name and username',
  email: 'See your email address and whether it is verified',
  offline_access: 'Stay connected while you are away (keep access after you sign out)',
};

/** Scopes of the built-in REST API resource, in the same spirit. */
const API_DESCRIPTIONS: Record<string, string> = {
  [API_SCOPE]: 'Act as you on the Latchkey REST API, with everything your account may do there',
};

export function describeScopes(scopes: Iterable<string>): Array<{ scope: string; description: string }> {
  return [...new Set(scopes)].map((scope) => ({
    scope,
    description: DESCRIPTIONS[scope] ?? `Use the "${scope}" permission`,
  }));
}

/**
 * What an application may do at one API resource (RFC 8707). Only the built-in REST API has
 * words for its scopes; other resources show their scope names, under the API's name.
 */
export function describeResourceScopes(scopes: Iterable<string>, { builtIn }: { builtIn: boolean }): Array<{ scope: string; description: string }> {
  return [...new Set(scopes)].map((scope) => ({
    scope,
    description: (builtIn ? API_DESCRIPTIONS[scope] : undefined) ?? `Use the "${scope}" permission`,
  }));
}

/** Words for the claims an application asked for through the claims parameter. */
export function describeClaims(claims: Iterable<string>): string[] {
  return [...new Set(claims)].filter((c) => c !== 'sub');
}
