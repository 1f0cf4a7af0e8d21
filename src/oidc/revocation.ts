import type { Knex } from 'knex';
import Provider, { type KoaContextWithOIDC } from 'oidc-provider';
import { revokeGrant, revokeGrantTokens } from '../storage/oidc-payloads.js';

/*
 * What revoking ends. RFC 7009 section 2.1 leaves it to the server whether revoking one token
 * ends others of the same grant. Ours:
 * - a refresh token is the grant's lasting credential: revoking it ends the grant, with every
 *   token and code issued under it (what a client means when it signs a person out for good);
 * - an access token is a short-lived copy: revoking it ends that access token alone, and the
 *   client's refresh token goes on working (what a client means when it drops one token, e.g.
 *   one it sent somewhere it should not have).
 * The library keeps the grant for an access token's revocation but still deletes every token
 * issued under it (lib/helpers/revoke.js); `accessTokenRevocationEndsOnlyIt` stops that.
 */

/** The revocation of an access token, at /o/token/revocation, is under way in `ctx`. */
function revokingAnAccessToken(ctx: KoaContextWithOIDC | undefined): boolean {
  return ctx?.oidc?.route === 'revocation' && ctx.oidc.entities.AccessToken !== undefined;
}

/** The provider's revokeGrantPolicy: whether the grant itself ends with what is being revoked. */
export function endsGrant(ctx: KoaContextWithOIDC): boolean {
  return !revokingAnAccessToken(ctx);
}

/**
 * The library calls revokeByGrantId on every token model after a revocation; during an access
 * token's revocation those calls do nothing, so the revoked token (deleted before them) is
 * all that ends.
 */
export function accessTokenRevocationEndsOnlyIt(provider: Provider): void {
  const models = [provider.AccessToken, provider.RefreshToken, provider.AuthorizationCode, provider.DeviceCode, provider.BackchannelAuthenticationRequest, provider.PreAuthorizedCode];
  for (const model of models) {
    const revokeByGrantId = model.revokeByGrantId.bind(model);
    model.revokeByGrantId = async (grantId: string) => {
      if (revokingAnAccessToken(Provider.ctx as KoaContextWithOIDC | undefined)) return;
      await revokeByGrantId(grantId);
    };
  }
}

/**
 * A code or refresh token redeemed a second time while the first redemption was under way
 * (our adapter's consume lost the race): the library never sees this replay, so this does
 * what it does for one it sees (lib/helpers/revoke.js): every token and code of the grant
 * ends, the grant too when the revokeGrantPolicy says so, and `grant.revoked` is emitted,
 * which writes the same audit entry.
 */
export async function revokeRacedReplay(provider: Provider, knex: Knex, grantId: string): Promise<void> {
  const ctx = Provider.ctx as KoaContextWithOIDC | undefined;
  const grantEnds = !ctx || endsGrant(ctx);
  await (grantEnds ? revokeGrant(knex, grantId) : revokeGrantTokens(knex, grantId));
  if (grantEnds && ctx) provider.emit('grant.revoked', ctx, grantId);
}
