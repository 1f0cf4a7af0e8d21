import type { User, UserRepository } from '../repositories/users.js';
import type { PasswordHasher } from './password-hasher.js';

/**
 * The one place a username/email and password become a user: the login page, the JWT and
 * legacy login endpoints and the password grant all come through here. Unknown users cost a
 * dummy hash, so timing does not tell them apart; inactive users fail like wrong passwords.
 * A hash made with another cost is upgraded on success.
 */
export function createAuthenticator(users: UserRepository, hasher: PasswordHasher) {
  return async function authenticate(login: unknown, password: unknown): Promise<User | undefined> {
    const name = typeof login === 'string' ? login : '';
    const secret = typeof password === 'string' ? password : '';
    const user = name && secret ? await users.findByLogin(name) : undefined;
    const matches = await hasher.verify(secret, user?.passwordHash);
    if (!user || !matches || !user.isActive) return undefined;
    if (hasher.needsRehash(user.passwordHash)) await users.setPasswordHash(user.id, await hasher.hash(secret));
    await users.recordLogin(user.id);
    return user;
  };
}

export type Authenticate = ReturnType<typeof createAuthenticator>;
