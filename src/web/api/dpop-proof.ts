import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify, type JWK, type JWTPayload } from 'jose';
import { ApiError } from '../../errors.js';
import { claimOnce } from '../../storage/oidc-payloads.js';
import { DPOP_SIGNING_ALGORITHMS } from '../../oidc/provider.js';

/**
 * How far a proof's `iat` may be from our clock, either way, at the REST API. Short, because
 * a proof is made for one request; the jti store keeps each proof for this long after its iat.
 */
export const DPOP_PROOF_WINDOW_SECONDS = 60;

/** Row model in oidc_payloads for proofs seen at the REST API (swept like every expired row). */
export const API_DPOP_PROOF_MODEL = 'ApiDPoPProof';

/**
 * A 401 about DPoP (RFC 9449 §7.1), answered with a `DPoP` challenge: `invalid_dpop_proof`
 * for a missing or bad proof, `invalid_token` when the token and the key or scheme disagree.
 */
export class DpopError extends ApiError {
  constructor(error: 'invalid_token' | 'invalid_dpop_proof', description: string) {
    super(401, error, description);
    this.name = 'DpopError';
  }
}

const invalidProof = (description: string) => new DpopError('invalid_dpop_proof', description);

/** One request to a protected resource, with the proof it carried and the key its token is bound to. */
export interface DpopProofRequest {
  /** The DPoP header; undefined when the request had none. */
  proof: string | undefined;
  /** The request method (the proof's htm). */
  method: string;
  /** The URL the client addressed (PUBLIC_URL + path); a query or fragment is ignored. */
  url: string;
  /** The access token sent with the proof (the proof's ath is its SHA-256). */
  accessToken: string;
  /** RFC 7638 thumbprint of the key the token is bound to (its `jkt`, or `cnf.jkt` in a JWT). */
  jkt: string;
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** JWK members that only private (or symmetric) keys have. */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest('base64url');

/** The URL without query and fragment, normalised by the URL parser; undefined if it is none. */
function resource(raw: unknown): string | undefined {
  if (typeof raw !== 'string' || !URL.canParse(raw)) return undefined;
  const url = new URL(raw);
  url.search = '';
  url.hash = '';
  return url.href;
}

/** Header checks before any cryptography: one JWS, an allowed alg, a public jwk. */
function checkHeader(proof: string): JWK {
  if (!COMPACT_JWS.test(proof)) throw invalidProof('The DPoP header must hold exactly one signed JWT.');
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw invalidProof('The DPoP proof is not a well-formed JWT.');
  }
  if (typeof header.alg !== 'string' || !(DPOP_SIGNING_ALGORITHMS as readonly string[]).includes(header.alg)) {
    throw invalidProof(`The DPoP proof must be signed with one of ${DPOP_SIGNING_ALGORITHMS.join(', ')}.`);
  }
  const jwk = header.jwk;
  if (!jwk || typeof jwk !== 'object' || Array.isArray(jwk)) throw invalidProof('The DPoP proof must carry its public key in the jwk header.');
  if (PRIVATE_JWK_MEMBERS.some((member) => member in jwk)) {
    throw invalidProof('The jwk in the DPoP proof must be a public key; it holds private key material.');
  }
  return jwk;
}

/** Claim checks of RFC 9449 §4.3 that need no storage: jti, htm, htu, iat, ath. */
function checkClaims(payload: JWTPayload, request: DpopProofRequest, nowSeconds: number): { jti: string; iat: number } {
  const { jti, htm, htu, iat, ath } = payload;
  if (typeof jti !== 'string' || jti === '' || jti.length > 512) throw invalidProof('The DPoP proof must have a jti.');
  if (htm !== request.method) throw invalidProof('The DPoP proof htm does not match the request method.');
  const expected = resource(request.url);
  if (expected === undefined || resource(htu) !== expected) throw invalidProof('The DPoP proof htu does not match the request URL.');
  if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalidProof('The DPoP proof must have a numeric iat.');
  if (Math.abs(nowSeconds - iat) > DPOP_PROOF_WINDOW_SECONDS) {
    throw invalidProof(`The DPoP proof iat is more than ${DPOP_PROOF_WINDOW_SECONDS} seconds from the server time.`);
  }
  if (ath !== sha256(request.accessToken)) throw invalidProof('The DPoP proof ath does not match the access token.');
  return { jti, iat };
}

export type DpopProofVerifier = (request: DpopProofRequest) => Promise<void>;

/**
 * Verifies the DPoP proof of one resource request (RFC 9449 §4.3 and §7): typ dpop+jwt, an
 * asymmetric alg from {@link DPOP_SIGNING_ALGORITHMS}, a public jwk that signed it, htm, htu,
 * iat within {@link DPOP_PROOF_WINDOW_SECONDS}, ath, the key's thumbprint equal to the token's
 * jkt, and a jti never seen before in any process (a row in oidc_payloads). Throws a
 * {@link DpopError}; the jti is recorded only for a proof that passed everything else.
 */
export function createDpopProofVerifier(knex: Knex, { now = () => Date.now() }: { now?: () => number } = {}): DpopProofVerifier {
  return async function verifyDpopProof(request) {
    if (!request.proof) throw invalidProof('A DPoP-bound token needs a DPoP proof in the DPoP header.');
    const jwk = checkHeader(request.proof);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(request.proof, EmbeddedJWK, { algorithms: [...DPOP_SIGNING_ALGORITHMS], typ: 'dpop+jwt' }));
    } catch {
      throw invalidProof('The DPoP proof is not a dpop+jwt signed by the key in its jwk header.');
    }
    const nowMs = now();
    const { jti, iat } = checkClaims(payload, request, nowMs / 1000);
    if ((await calculateJwkThumbprint(jwk, 'sha256')) !== request.jkt) {
      throw new DpopError('invalid_token', 'The DPoP proof was made with another key than the one this token is bound to.');
    }
    // Kept until the proof's iat leaves the window (and a second more): after that the iat
    // check refuses it anyway.
    const keepUntil = Math.ceil((iat + DPOP_PROOF_WINDOW_SECONDS) * 1000) + 1000;
    const fresh = await claimOnce(knex, API_DPOP_PROOF_MODEL, sha256(`${request.jkt}${jti}`), Math.max(keepUntil, nowMs + 1000), {}, nowMs);
    if (!fresh) throw invalidProof('This DPoP proof has been used before.');
  };
}
