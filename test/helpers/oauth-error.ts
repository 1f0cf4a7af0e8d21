import * as oidc from 'openid-client';

/**
 * The OAuth error code a failed openid-client call carries: from a JSON error body, or from a
 * WWW-Authenticate challenge (the token endpoint answers Basic credentials with one).
 * Throws if the call succeeded or failed in some other way.
 */
export async function oauthError(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (error) {
    if (error instanceof oidc.ResponseBodyError) return error.error;
    if (error instanceof oidc.WWWAuthenticateChallengeError) return error.cause[0]?.parameters.error ?? '';
    throw error;
  }
  throw new Error('expected the call to fail with an OAuth error, but it succeeded');
}
