import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { ApiError } from '../../errors.js';
import type { KeyMaterial } from '../../core/keys/key-store.js';
import { ACCESS_TYP, localJwksOf } from '../../core/tokens/api-tokens.js';

/** A verified RFC 9068 access JWT that the provider issued for our REST API. */
export interface ApiResourceToken {
  clientId: string;
  /** The account it acts for; null when it acts for the client alone (client_credentials). */
  accountId: string | null;
  scopes: ReadonlySet<string>;
  /** RFC 9449: the thumbprint of the DPoP key the token is bound to (`cnf.jkt`), if any. */
  jkt?: string;
  /** The grant and login session it was issued under (our own claims, see provider.ts). */
  grantId?: string;
  sessionUid?: string;
  /** It ends with that login session (no offline_access). */
  sessionBound?: boolean;
}

const invalid = (description: string) => new ApiError(401, 'invalid_token', description);

/**
 * The DPoP key a token is bound to (`cnf.jkt`), for the caller's proof check. Any other
 * confirmation (mTLS `x5t#S256`) needs a proof this API cannot check: refused.
 */
function dpopBinding(payload: JWTPayload): string | undefined {
  const cnf = payload['cnf'];
  if (cnf === undefined) return undefined;
  const jkt = (cnf as { jkt?: unknown } | null)?.jkt;
  if (typeof jkt !== 'string' || !jkt || Object.keys(cnf as object).length !== 1) throw invalid('Sender-constrained tokens other than DPoP are not accepted here.');
  return jkt;
}

/**
 * Verifies access JWTs from /o/token for the resource `${PUBLIC_URL}/api`, offline, against
 * the same keys the provider signs with: RS256/ES256 only (never `none` or HMAC), a known
 * `kid`, `iss` = the issuer, `aud` containing our API, `typ: at+jwt`, not expired.
 */
export function createResourceTokenVerifier({ issuer, audience, keys }: { issuer: string; audience: string; keys: () => KeyMaterial }) {
  const jwks = localJwksOf(keys);

  return async function verifyResourceToken(token: string): Promise<ApiResourceToken> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks(), {
        issuer,
        audience,
        typ: ACCESS_TYP,
        algorithms: ['RS256', 'ES256'],
        requiredClaims: ['sub', 'client_id', 'exp', 'iat', 'jti'],
      }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw invalid('The token has expired.');
      if (error instanceof joseErrors.JOSEError) throw invalid('The token is invalid.');
      throw error;
    }
    // /api/token/ JWTs (token_type, user_id) are verified by their own rules, never these.
    if (payload['token_type'] !== undefined || payload['user_id'] !== undefined) throw invalid('The token is invalid.');
    const jkt = dpopBinding(payload);
    const clientId = payload['client_id'];
    const sub = payload.sub;
    if (typeof clientId !== 'string' || !clientId || typeof sub !== 'string' || !sub) throw invalid('The token is invalid.');
    const scopes = new Set(typeof payload['scope'] === 'string' ? payload['scope'].split(' ').filter(Boolean) : []);
    // RFC 9068 2.2: a token no person granted (client_credentials) names the client in `sub`.
    // Account ids are user ids, client ids never are (and a collision would only make a user
    // token client-only, never the reverse).
    const text = (name: string) => (typeof payload[name] === 'string' && payload[name] ? (payload[name] as string) : undefined);
    const grantId = text('grant_id');
    const sessionUid = text('session_uid');
    return {
      clientId,
      accountId: sub === clientId ? null : sub,
      scopes,
      ...(jkt ? { jkt } : {}),
      ...(grantId ? { grantId } : {}),
      ...(sessionUid ? { sessionUid } : {}),
      ...(sessionUid && payload['session_bound'] === true ? { sessionBound: true } : {}),
    };
  };
}

export type VerifyResourceToken = ReturnType<typeof createResourceTokenVerifier>;
