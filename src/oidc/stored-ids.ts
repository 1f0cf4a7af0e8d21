import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * What of node-oidc-provider's data may be stored as the library hands it over, and what only
 * as a SHA-256: a database leak must not hand out working credentials.
 *
 * A model's id is a bearer secret when presenting the id is what uses the thing: tokens and
 * codes, registration and initial access tokens, pushed request ids (the request_uri), CIBA
 * request ids, the Session id (the `_session` cookie value) and the Interaction uid (the
 * `_interaction` and `_interaction_resume` cookie values). Those rows are keyed by the SHA-256
 * of the id, and the payload (whose `jti` is the id) is stored without it.
 *
 * Interaction uids are also in the URLs of the login pages, yet count as secrets here: with
 * the uid and the cookie keys (which live in the same database), whoever reads the table
 * while a person's sign-in is being completed could resume that interaction in a browser of
 * their own and be signed in as the person (the library checks a session only when the
 * interaction started with one).
 *
 * Not secrets, kept as they are:
 * - Grant ids: a reference every token of the grant carries, also into our API JWTs
 *   (`grant_id`) and the account pages' URLs; no endpoint takes a grant id as a credential,
 *   each one is reached through a token, code or session.
 * - Session uids: the public handle of a login session (/api/me/sessions/), not its cookie.
 * - ReplayDetection ids are already SHA-256 digests of a proof's issuer and jti.
 *
 * Plain SHA-256, not keyed: every id is 126 (nanoid) to 256 random bits, so there is nothing
 * to guess that a key would protect, and a key would have to live where every process reads it
 * (the database, which is what leaks) or in the configuration (changing it would end every
 * token). Client secrets and email link tokens are stored the same way. User codes are the
 * exception in strength: 8 characters of 20 (34.6 bits), so a leaked digest can be reversed by
 * trying them all; what that gives is the chance to approve or deny someone's device within
 * its 10 minutes, with one's own account, never a token.
 */
export const SECRET_ID_MODELS: ReadonlySet<string> = new Set([
  'AccessToken',
  'AuthorizationCode',
  'BackchannelAuthenticationRequest',
  'ClientCredentials',
  'DeviceCode',
  'InitialAccessToken',
  'Interaction',
  'PreAuthorizedCode',
  'PushedAuthorizationRequest',
  'RefreshToken',
  'RegistrationAccessToken',
  'Session',
]);

/** The stored form of a secret value: SHA-256, hex (as client secrets and email tokens). */
export function secretDigest(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/**
 * Ids of other rows an Interaction payload carries: the login session's cookie value, the
 * device code being approved, the pushed request being answered. Stored as the digests (the
 * stored ids of those rows), handed back to the library as references.
 */
const INTERACTION_REFERENCES = [
  { path: ['session', 'cookie'], model: 'Session' },
  { path: ['deviceCode'], model: 'DeviceCode' },
  { path: ['parJti'], model: 'PushedAuthorizationRequest' },
] as const;

/*
 * A row found by something other than its secret id (a device code by its user code, a
 * session by its uid, a device code named by an Interaction) must still be saved, consumed
 * and destroyed by the library under some id, and we no longer know the secret. The library
 * gets a reference instead: the row's stored id with an HMAC under a key that exists only in
 * this process's memory. A reference resolves to its row (`storedIdOf`); anything else
 * presented is hashed. Someone holding the database has the stored ids but not the key, so
 * cannot make a reference; the library never hands a reference to a client; and references
 * stored in an Interaction payload are turned back into digests before they are written.
 */
const REFERENCE_KEY = randomBytes(32);
/** Never the first character of a library id (nanoid's alphabet is A-Za-z0-9_-). */
const REFERENCE_PREFIX = '~';

function referenceMac(model: string, storedId: string): Buffer {
  return createHmac('sha256', REFERENCE_KEY).update(`${model}\0${storedId}`).digest();
}

/** A reference the library can use as the id of the row `storedId` of `model`, in this process. */
export function referenceTo(model: string, storedId: string): string {
  return `${REFERENCE_PREFIX}${storedId}.${referenceMac(model, storedId).toString('base64url')}`;
}

/** The stored id a reference names, when `value` is a genuine reference to a row of `model`. */
function referencedId(model: string, value: string): string | undefined {
  if (!value.startsWith(REFERENCE_PREFIX)) return undefined;
  const dot = value.lastIndexOf('.');
  if (dot < 0) return undefined;
  const storedId = value.slice(REFERENCE_PREFIX.length, dot);
  const mac = Buffer.from(value.slice(dot + 1), 'base64url');
  const expected = referenceMac(model, storedId);
  return mac.length === expected.length && timingSafeEqual(mac, expected) ? storedId : undefined;
}

/** The `id` column of the row the library means by `id` (as presented, or a reference). */
export function storedIdOf(model: string, id: string): string {
  return referencedId(model, id) ?? (SECRET_ID_MODELS.has(model) ? secretDigest(id) : id);
}

type Payload = Record<string, unknown>;

function objectAt(payload: Payload, path: readonly string[]): Payload | undefined {
  let at: unknown = payload;
  for (const key of path.slice(0, -1)) at = at && typeof at === 'object' ? (at as Payload)[key] : undefined;
  return at && typeof at === 'object' ? (at as Payload) : undefined;
}

/** A copy of `payload` with each Interaction reference passed through `map`. */
function mapReferences(payload: Payload, map: (model: string, value: string) => string): Payload {
  const copy = structuredClone(payload);
  for (const { path, model } of INTERACTION_REFERENCES) {
    const holder = objectAt(copy, path);
    const key = path[path.length - 1]!;
    const value = holder?.[key];
    if (holder && typeof value === 'string') holder[key] = map(model, value);
  }
  return copy;
}

/** Where an Interaction's `returnTo` (the provider's /o/auth/<uid> URL) had its uid. */
const UID_IN_RETURN_TO = '{uid}';

/** What is written for a payload of `model`: no secret in it, the user code as a digest. */
export function payloadToStore(model: string, payload: Payload): { payload: Payload; userCodeDigest: string | null } {
  if (!SECRET_ID_MODELS.has(model)) return { payload, userCodeDigest: null };
  const { jti, userCode, ...rest } = model === 'Interaction' ? mapReferences(payload, storedIdOf) : payload;
  if (model === 'Interaction' && typeof rest['returnTo'] === 'string' && typeof jti === 'string' && jti !== '') {
    rest['returnTo'] = rest['returnTo'].replaceAll(jti, UID_IN_RETURN_TO);
  }
  return { payload: rest, userCodeDigest: typeof userCode === 'string' && userCode !== '' ? secretDigest(userCode) : null };
}

/**
 * The payload the library gets back for a stored one: `id` (what it looked the row up by, or
 * a reference when it looked it up by something else) as the jti again, the user code it
 * presented, references where an Interaction names other rows.
 */
export function payloadFound(model: string, stored: Payload, id: string, userCode?: string): Payload {
  if (!SECRET_ID_MODELS.has(model)) return stored;
  const found: Payload = { ...(model === 'Interaction' ? mapReferences(stored, referenceTo) : stored), jti: id, ...(userCode !== undefined ? { userCode } : {}) };
  if (model === 'Interaction' && typeof found['returnTo'] === 'string') found['returnTo'] = found['returnTo'].replaceAll(UID_IN_RETURN_TO, id);
  return found;
}
