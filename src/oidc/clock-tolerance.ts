import type Provider from 'oidc-provider';

/**
 * Seconds of clock skew the provider forgives (its `clockTolerance`: the library's default,
 * stated here because storage depends on it). The library, for a device code or a refresh
 * token, answers with the error its spec names (RFC 8628 `expired_token`) only while it can
 * still find the expired row; so our adapter keeps every row `clockTolerance` seconds past its
 * expiry, as the library's own memory adapter does.
 */
export const CLOCK_TOLERANCE_SECONDS = 15;

/** The models the provider stores through our adapter. */
const STORED_MODELS = [
  'AccessToken',
  'AuthorizationCode',
  'BackchannelAuthenticationRequest',
  'ClientCredentials',
  'DeviceCode',
  'Grant',
  'InitialAccessToken',
  'Interaction',
  'PreAuthorizedCode',
  'PushedAuthorizationRequest',
  'RefreshToken',
  'RegistrationAccessToken',
  'Session',
] as const;

interface VerifyingModel {
  verify(stored: Record<string, unknown>, options?: { ignoreExpiration?: boolean }): Promise<Record<string, unknown>>;
}

/**
 * The tolerance is for what other parties sign with their own clocks (client assertions,
 * request objects, DPoP proofs). Our own tokens, codes and sessions are issued and checked by
 * this server's clock, so they stop working at their `exp`, not `clockTolerance` seconds later,
 * even though the adapter still finds them then. Lookups that read expired rows on purpose
 * (`ignoreExpiration`: the grant endpoints, which then say "expired") are left alone.
 */
export function ownTokensExpireOnTime(provider: Provider): void {
  for (const name of STORED_MODELS) {
    const model = provider[name] as unknown as VerifyingModel;
    const verify = model.verify.bind(model);
    model.verify = async (stored, options = {}) => {
      const payload = await verify(stored, options);
      const exp = payload['exp'];
      // The library's own test (isExpired): expired from the second of `exp` on.
      if (!options.ignoreExpiration && typeof exp === 'number' && exp <= Math.floor(Date.now() / 1000)) throw new TypeError('expired');
      return payload;
    };
  }
}
