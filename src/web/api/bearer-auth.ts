import { decodeJwt } from 'jose';
import type Provider from 'oidc-provider';
import { clientApiScopes } from '../../core/clients/api-scopes.js';
import { ApiError } from '../../errors.js';
import type { ApiScope } from '../../core/resources/built-in.js';
import type { ClientRepository } from '../../storage/clients.js';
import type { User, UserRepository } from '../../storage/users.js';
import { FIRST_PARTY_CLIENT_ID } from '../../oidc/password-grant.js';
import type { ApiTokens } from '../../core/tokens/api-tokens.js';
import { DpopError, type DpopProofVerifier } from './dpop-proof.js';
import type { VerifyResourceToken } from './resource-access-tokens.js';

/** Who a bearer token speaks for: a user, or only a client (client_credentials). */
export interface Principal {
  user: User | null;
  /** The OAuth client the token was issued to, when it came from /o/token. */
  clientId?: string;
  /** For /o/token access tokens: the grant and the login session they were issued under. */
  grantId?: string;
  sessionUid?: string;
  /** api-jwt: from /api/token/; oauth: opaque, from /o/token; oauth-jwt: RFC 9068 JWT from /o/token. */
  via: 'api-jwt' | 'oauth' | 'oauth-jwt';
  /** RFC 7638 thumbprint of the DPoP key the token is bound to; the request proved it holds that key. */
  jkt?: string;
  /** What the token may do here (see {@link TokenAccess}). */
  access: TokenAccess;
}

/**
 * What a token may do at the REST API, decided by who issued it for whom:
 * - `first-party`: our own credentials (/api/token/ JWTs, tokens of the built-in first-party
 *   client from /users/login/ and its password grant): everything the user may do, as before.
 * - `api`: a token issued for the resource `${PUBLIC_URL}/api` (RFC 8707): only its scopes.
 * - `userinfo`: an access token an app got without a resource, i.e. for /o/me: reading the
 *   person's own profile at /auth/me/ within its OpenID scopes, nothing else.
 */
export type TokenAccess =
  | { kind: 'first-party' }
  | { kind: 'api'; scopes: ReadonlySet<string> }
  | { kind: 'userinfo'; scopes: ReadonlySet<string> };

/** A token as a request presented it, with what a DPoP proof check needs. */
export interface PresentedToken {
  /** The Authorization scheme, lower-cased. */
  scheme: 'bearer' | 'dpop';
  token: string;
  /** The DPoP header, if any. */
  proof: string | undefined;
  method: string;
  /** The request path without query, as received (the proof's htu is PUBLIC_URL + path). */
  path: string;
}

/** 401 invalid_token (RFC 6750 3.1): missing, bad, expired, revoked, or for another audience. */
export class InvalidToken extends ApiError {
  constructor(description: string) {
    super(401, 'invalid_token', description);
  }
}

const words = (scope: unknown): ReadonlySet<string> => new Set(typeof scope === 'string' ? scope.split(' ').filter(Boolean) : []);

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export interface BearerDeps {
  users: UserRepository;
  clients: ClientRepository;
  apiTokens: ApiTokens;
  verifyResourceToken: VerifyResourceToken;
  /** `${PUBLIC_URL}/api`: the only audience this API accepts tokens for. */
  audience: string;
  provider: () => Provider;
  /** Checks DPoP proofs for DPoP-bound tokens (RFC 9449). */
  verifyDpopProof: DpopProofVerifier;
  /** Public base URL: the URL a DPoP proof names is PUBLIC_URL + path, whatever Host said. */
  publicUrl: string;
}

/** Whether a token's `aud` (a string or a list) names `audience`. */
function audienceIncludes(aud: unknown, audience: string): boolean {
  return aud === audience || (Array.isArray(aud) && aud.includes(audience));
}

/** Reads a JWT's claims unverified, only to pick which verifier checks it; garbage is 401. */
function unverifiedClaims(token: string): Record<string, unknown> {
  try {
    return decodeJwt(token);
  } catch {
    throw new InvalidToken('The token is invalid.');
  }
}

/**
 * Resolves `Authorization: Bearer|DPoP` into a {@link Principal}: our API JWTs (verified
 * against our keys), access JWTs the provider issued for the resource `${PUBLIC_URL}/api`
 * (verified against the same keys, offline), or opaque access tokens issued at /o/token
 * (looked up in storage, their grant still alive, and issued for no resource or for ours).
 * Inactive or deleted users are refused like a bad token. A token bound to a DPoP key (its
 * principal has `jkt`) must come with the DPoP scheme and a valid proof from that key; an
 * unbound one with the Bearer scheme.
 */
export function createBearerResolver({ users, clients, apiTokens, verifyResourceToken, audience, provider, verifyDpopProof, publicUrl }: BearerDeps) {
  async function activeUser(sub: string | undefined): Promise<User> {
    const user = sub ? await users.findById(sub) : undefined;
    if (!user || !user.isActive) throw new InvalidToken('The user is inactive or deleted.');
    return user;
  }

  /**
   * The one sender-constraint check for every kind of token: give it the `jkt` the token is
   * bound to (undefined for a bearer token).
   */
  async function checkSenderConstraint(presented: PresentedToken, jkt: string | undefined): Promise<void> {
    if (jkt === undefined) {
      if (presented.scheme === 'dpop') throw new DpopError('invalid_token', 'This token is not DPoP-bound; send it with the Bearer scheme.');
      return;
    }
    if (presented.scheme !== 'dpop') throw new DpopError('invalid_token', 'This token is DPoP-bound; send it with the DPoP scheme and a DPoP proof.');
    await verifyDpopProof({ proof: presented.proof, method: presented.method, url: publicUrl + presented.path, accessToken: presented.token, jkt });
  }

  /**
   * What a token issued for our API may do: its scopes, as far as its client is still
   * registered for them, so staff taking an API scope from a client end it in the tokens
   * already issued too (client_credentials ones have no grant to revoke). A deleted client's
   * tokens are refused.
   */
  async function apiAccess(clientId: string | undefined, scopes: ReadonlySet<string>): Promise<TokenAccess> {
    const client = clientId ? await clients.find(clientId) : undefined;
    if (!client) throw new InvalidToken('The client this token was issued to no longer exists.');
    const registered = clientApiScopes(client.metadata);
    return { kind: 'api', scopes: new Set([...scopes].filter((scope) => registered.has(scope as ApiScope))) };
  }

  /**
   * A provider JWT for our API. It cannot be revoked, so what it names is checked on every
   * request: the client must still exist (and be registered for the scopes), its grant
   * too, and the user still be active.
   */
  async function resourceTokenPrincipal(token: string): Promise<Principal> {
    const verified = await verifyResourceToken(token);
    const access = await apiAccess(verified.clientId, verified.scopes);
    // A revoked grant (the person revoked the app, changed the password, was deactivated)
    // ends its JWTs at once, not when they expire.
    if (verified.grantId && !(await provider().Grant.find(verified.grantId))) throw new InvalidToken('The token has been revoked.');
    if (verified.sessionBound && verified.sessionUid && !(await provider().Session.findByUid(verified.sessionUid))) {
      throw new InvalidToken('The login session this token was issued in has ended.');
    }
    const user = verified.accountId === null ? null : await activeUser(verified.accountId);
    return {
      user,
      clientId: verified.clientId,
      via: 'oauth-jwt',
      access,
      ...(verified.jkt ? { jkt: verified.jkt } : {}),
      ...(verified.grantId ? { grantId: verified.grantId } : {}),
      ...(verified.sessionUid ? { sessionUid: verified.sessionUid } : {}),
    };
  }

  async function lookUp(token: string): Promise<Principal> {
    if (JWT_SHAPE.test(token)) {
      // Both kinds are signed by our keys for our audience; only /api/token/ JWTs carry
      // token_type and user_id. Each verifier insists on its own shape.
      const claims = unverifiedClaims(token);
      if (claims['token_type'] === undefined && claims['user_id'] === undefined) return resourceTokenPrincipal(token);
      return { user: (await apiTokens.verifyAccess(token)).user, via: 'api-jwt', access: { kind: 'first-party' } };
    }
    const p = provider();
    const accessToken = await p.AccessToken.find(token);
    if (!accessToken) {
      // client_credentials tokens are a model of their own; they act for no user.
      const clientToken = await p.ClientCredentials.find(token);
      if (!clientToken || clientToken.isExpired) throw new InvalidToken('The token is invalid, expired or revoked.');
      if (clientToken['x5t#S256']) throw new InvalidToken('Certificate-bound (mTLS) tokens are not accepted here.');
      if (clientToken.aud !== undefined && !audienceIncludes(clientToken.aud, audience)) throw new InvalidToken('The token was issued for another resource.');
      // Without our audience it was issued for no API at all: it reaches nothing here.
      const access: TokenAccess = clientToken.aud === undefined ? { kind: 'userinfo', scopes: new Set() } : await apiAccess(clientToken.clientId, words(clientToken.scope));
      return { user: null, clientId: clientToken.clientId, via: 'oauth', access, ...(clientToken.jkt ? { jkt: clientToken.jkt } : {}) };
    }
    if (accessToken.isExpired) throw new InvalidToken('The token is invalid, expired or revoked.');
    if (accessToken['x5t#S256']) throw new InvalidToken('Certificate-bound (mTLS) tokens are not accepted here.');
    // One issued for another API resource (RFC 8707, opaque format) is that API's, not ours;
    // one without an audience is for userinfo, unless our own first-party client holds it.
    if (accessToken.aud !== undefined && !audienceIncludes(accessToken.aud, audience)) throw new InvalidToken('The token was issued for another resource.');
    const scopes = words(accessToken.scope);
    const access: TokenAccess =
      accessToken.aud !== undefined
        ? await apiAccess(accessToken.clientId, scopes)
        : accessToken.clientId === FIRST_PARTY_CLIENT_ID
          ? { kind: 'first-party' }
          : { kind: 'userinfo', scopes };
    if (accessToken.grantId && !(await p.Grant.find(accessToken.grantId))) {
      throw new InvalidToken('The token has been revoked.');
    }
    const user = accessToken.accountId ? await activeUser(accessToken.accountId) : null;
    return {
      user,
      clientId: accessToken.clientId,
      ...(accessToken.grantId ? { grantId: accessToken.grantId } : {}),
      ...(accessToken.sessionUid ? { sessionUid: accessToken.sessionUid } : {}),
      via: 'oauth',
      access,
      ...(accessToken.jkt ? { jkt: accessToken.jkt } : {}),
    };
  }

  return async function resolve(presented: PresentedToken): Promise<Principal> {
    const principal = await lookUp(presented.token);
    await checkSenderConstraint(presented, principal.jkt);
    return principal;
  };
}

export type BearerResolver = ReturnType<typeof createBearerResolver>;
