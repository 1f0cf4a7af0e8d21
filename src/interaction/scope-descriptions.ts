/** What each scope lets an application do, in words a person can judge on the consent page. */
const DESCRIPTIONS: Record<string, string> = {
  openid: 'Sign you in with your Latchkey account',
  profile: 'See your name and username',
  email: 'See your email address and whether it is verified',
  offline_access: 'Stay connected while you are away (keep access after you sign out)',
};

export function describeScopes(scopes: Iterable<string>): Array<{ scope: string; description: string }> {
  return [...new Set(scopes)].map((scope) => ({
    scope,
    description: DESCRIPTIONS[scope] ?? `Use the "${scope}" permission`,
  }));
}

/** Words for the claims an application asked for through the claims parameter. */
export function describeClaims(claims: Iterable<string>): string[] {
  return [...new Set(claims)].filter((c) => c !== 'sub');
}
