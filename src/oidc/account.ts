import type { Account, FindAccount } from 'oidc-provider';
import type { GroupRepository } from '../storage/groups.js';
import type { UserRepository } from '../storage/users.js';
import { claimsOf } from '../core/accounts/claims.js';

/**
 * The provider's findAccount: an account exists only while its user exists and is active,
 * so deactivating a user stops userinfo, refresh and introspection at once.
 */
export function createFindAccount(users: UserRepository, groups: GroupRepository): FindAccount {
  return async (_ctx, sub): Promise<Account | undefined> => {
    const user = await users.findById(sub);
    if (!user || !user.isActive) return undefined;
    return {
      accountId: String(user.id),
      claims: async () => claimsOf(user, await groups.namesForUser(user.id)) as { sub: string },
    };
  };
}
