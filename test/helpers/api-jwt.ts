import { randomBytes } from 'node:crypto';
import { importJWK, SignJWT, type CryptoKey, type JWK, type JWTHeaderParameters, type JWTPayload } from 'jose';
import type { Latchkey } from '../../src/app.js';
import { createPasswordHasher } from '../../src/core/accounts/password-hasher.js';
import type { User } from '../../src/storage/users.js';

/** The server's current RS256 private key, read in-process (nobody outside can do this). */
export function serverSigningJwk(latchkey: Latchkey): JWK {
  const jwk = latchkey.host.keys.jwks.keys.find((k) => k.alg === 'RS256' && !k.key_ops);
  if (!jwk?.kid || !jwk.d) throw new Error('no current RS256 private key');
  return jwk;
}

/** Signs `claims` with the server's own current RS256 key, header overridable. */
export async function signWithServerKey(latchkey: Latchkey, claims: JWTPayload, header: Partial<JWTHeaderParameters> = {}): Promise<string> {
  const jwk = serverSigningJwk(latchkey);
  const key = (await importJWK(jwk, 'RS256')) as CryptoKey;
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: jwk.kid!, ...header }).sign(key);
}

/** The claims of an /api/token/ access JWT as the release before `auth_stamp` minted them (five minutes). */
export function simplejwtAccessClaims(latchkey: Latchkey, user: User): JWTPayload {
  const iat = Math.floor(Date.now() / 1000);
  return {
    iss: latchkey.config.issuer,
    aud: `${latchkey.config.publicUrl}/api`,
    sub: String(user.id),
    user_id: user.id,
    token_type: 'access',
    client_id: 'latchkey-api',
    jti: randomBytes(16).toString('base64url'),
    iat,
    exp: iat + 300,
  };
}

/** Gives a user a password hash of another bcrypt cost, as an older configuration stored it. */
export async function storeHashOfCost(latchkey: Latchkey, userId: number, password: string, cost: number): Promise<void> {
  const hasher = createPasswordHasher({ cost, threads: 1 });
  try {
    await latchkey.storage.users.setPasswordHash(userId, await hasher.hash(password));
  } finally {
    await hasher.close();
  }
}
