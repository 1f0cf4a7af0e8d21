import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Discovery must advertise exactly what works. Every item of the discovery document (an
 * endpoint, a boolean, or one value of a list) is mapped here to the tests that exercise it
 * against a real server; the test below fails when discovery gains an item nobody tests, or
 * when this list claims an item discovery no longer advertises, or names a test that is gone.
 */
type TestRef = readonly [file: string, title: string];

const FLOWS = 'integration/oidc-flows.test.ts';
const NEGATIVE = 'integration/negative.test.ts';
const MODES = 'integration/response-modes.test.ts';
const CLIENT_REGISTRATION = 'integration/clients-api-registration.test.ts';
const CLIENT_ACCESS = 'integration/clients-api-access.test.ts';
const LOCALES = 'integration/locales-acr.test.ts';
const DPOP = 'integration/dpop.test.ts';
const PAR = 'integration/par-jar-jarm.test.ts';
const ASSERTION_ALGS: TestRef = [PAR, 'accepts private_key_jwt signed with each advertised algorithm'];
const REQUEST_OBJECT_ALGS: TestRef = [PAR, 'accepts request objects signed with each advertised algorithm'];
const JARM_ALGS: TestRef = [PAR, 'completes response_mode=jwt with openid-client verifying the response, signed with each advertised algorithm'];
const JARM_MODES: TestRef = [PAR, 'delivers the response JWT in each advertised JWT response mode'];

const DJANGO_IMPORT = 'integration/django-import.test.ts';
const DJANGO_GROUPS: TestRef = [
  DJANGO_IMPORT,
  'skip_authorization carries over: the SPA signs in without a consent screen (code + PKCE) and gets the groups claim, the partner site still asks',
];

const SIGN_IN: TestRef = [FLOWS, 'signs in through the login and consent pages and validates the ID token'];

export const DISCOVERY_COVERAGE: Record<string, readonly TestRef[]> = {
  issuer: [[FLOWS, 'publishes discovery with the issuer under /o']],
  authorization_endpoint: [SIGN_IN],
  token_endpoint: [SIGN_IN],
  userinfo_endpoint: [SIGN_IN],
  jwks_uri: [['integration/api-tokens.test.ts', 'issues an access/refresh pair that verifies against the live /o/jwks']],
  end_session_endpoint: [[FLOWS, 'signs out through RP-initiated logout and ends the session on the server']],
  introspection_endpoint: [[FLOWS, 'introspects user tokens: active with sub and scope, inactive for garbage']],
  revocation_endpoint: [[FLOWS, 'revokes access and refresh tokens']],
  registration_endpoint: [[CLIENT_REGISTRATION, 'registers an authorization_code client with redirect URIs that signs a user in']],
  device_authorization_endpoint: [['integration/device-flow.test.ts', 'lets a person approve a device in a browser while the device polls']],

  'grant_types_supported: authorization_code': [SIGN_IN],
  'grant_types_supported: refresh_token': [[FLOWS, 'rotates refresh tokens and revokes the grant when a used one is replayed']],
  'grant_types_supported: client_credentials': [[FLOWS, 'issues client_credentials tokens that introspect as active for their client']],
  'grant_types_supported: urn:ietf:params:oauth:grant-type:device_code': [
    ['integration/device-flow.test.ts', 'lets a person approve a device in a browser while the device polls'],
  ],
  'grant_types_supported: password': [['integration/api-tokens.test.ts', 'issues tokens to a confidential client allowed the grant; userinfo works']],

  'response_types_supported: code': [SIGN_IN],
  'response_types_supported: none': [['integration/admin-auth.test.ts', 'sends staff through the login page and back to the page they asked for']],
  'response_modes_supported: query': [[MODES, 'returns code, state and iss in the query by default (response_mode=query)']],
  'response_modes_supported: fragment': [[MODES, 'returns the response in the fragment with response_mode=fragment']],
  'response_modes_supported: form_post': [
    [MODES, 'POSTs the response to the redirect URI with response_mode=form_post, under a CSP that allows only its own script'],
  ],
  'authorization_response_iss_parameter_supported: true': [
    [MODES, 'returns code, state and iss in the query by default (response_mode=query)'],
    [MODES, 'a callback whose iss is another issuer is refused by the client (mix-up defence)'],
  ],
  'code_challenge_methods_supported: S256': [
    [NEGATIVE, 'advertises S256 only'],
    [NEGATIVE, 'refuses code_challenge_method=plain'],
    [NEGATIVE, 'refuses a wrong code_verifier'],
  ],

  'scopes_supported: openid': [[FLOWS, 'releases claims per scope: openid alone gives only sub']],
  'scopes_supported: profile': [SIGN_IN],
  'scopes_supported: email': [SIGN_IN],
  'scopes_supported: groups': [DJANGO_GROUPS],
  'scopes_supported: offline_access': [[FLOWS, 'keeps offline_access refresh tokens working after the person signs out; others end with the session']],
  'claims_parameter_supported: true': [[FLOWS, 'honours the claims parameter for the ID token']],
  'claim_types_supported: normal': [SIGN_IN],
  'claims_supported: sub': [SIGN_IN],
  'claims_supported: iss': [SIGN_IN],
  'claims_supported: preferred_username': [SIGN_IN],
  'claims_supported: name': [SIGN_IN],
  'claims_supported: given_name': [SIGN_IN],
  'claims_supported: family_name': [SIGN_IN],
  'claims_supported: updated_at': [SIGN_IN],
  'claims_supported: email': [SIGN_IN],
  'claims_supported: email_verified': [SIGN_IN],
  'claims_supported: groups': [DJANGO_GROUPS, [DJANGO_IMPORT, 'the DOT 1 password-grant app signs people in at /o/token with its clear Django secret, kept as is']],
  'claims_supported: auth_time': [['integration/session-security.test.ts', 'forces a new login when max_age has passed, and records auth_time']],
  'claims_supported: sid': [['integration/backchannel-logout.test.ts', 'sends the client a signed logout token when the person signs out']],
  'subject_types_supported: public': [[FLOWS, 'gives a person the same sub at every client (subject type public)']],

  'id_token_signing_alg_values_supported: RS256': [SIGN_IN],
  'id_token_signing_alg_values_supported: ES256': [
    [CLIENT_REGISTRATION, 'registers a client that asks for ES256 ID tokens: they are ES256 and verify against /o/jwks'],
  ],

  'token_endpoint_auth_methods_supported: client_secret_basic': [
    [CLIENT_ACCESS, 'a hashed-secret client authenticates with client_secret_basic and client_secret_post; a wrong secret fails for both'],
  ],
  'token_endpoint_auth_methods_supported: client_secret_post': [
    [CLIENT_ACCESS, 'a hashed-secret client authenticates with client_secret_basic and client_secret_post; a wrong secret fails for both'],
  ],
  'token_endpoint_auth_methods_supported: none': [['integration/api-tokens.test.ts', 'refreshes at /o/token as the public client']],

  'ui_locales_supported: en': [[LOCALES, 'falls back to Accept-Language by q-value, then to English']],
  'ui_locales_supported: fr': [
    [LOCALES, 'renders the login and consent pages in French for ui_locales=fr'],
    [LOCALES, 'takes the first supported tag of ui_locales, a region matching its language'],
    ['integration/device-browser.test.ts', 'shows the device pages in French for a French browser'],
  ],
  'acr_values_supported: urn:latchkey:acr:password': [
    [LOCALES, 'puts the password acr and amr into the ID token when acr_values asks for it'],
    [LOCALES, 'refuses an essential acr it cannot deliver, with or without a session, and never shows a login form'],
  ],
  'acr_values_supported: urn:latchkey:acr:mfa': [
    ['integration/two-factor.test.ts', 'asks for the code after the password; only the code finishes the login, with amr pwd+otp and the mfa acr'],
    ['integration/two-factor.test.ts', 'refuses an essential mfa acr for a user without two-factor, after the password'],
    ['integration/two-factor.test.ts', 'meets an essential mfa acr with two-factor, and gives the password acr to a request that accepts only that'],
  ],
  'claims_supported: acr': [[LOCALES, 'puts the password acr and amr into the ID token when acr_values asks for it']],
  'claims_supported: amr': [[LOCALES, 'says how the person signed in also without acr_values, and after a refresh']],

  'dpop_signing_alg_values_supported: ES256': [
    [DPOP, 'issues a DPoP token bound to the key (token_type DPoP, cnf.jkt)'],
    [DPOP, 'refuses the same token at userinfo as a Bearer token'],
    [DPOP, 'binds a token at /o/token and passes our REST API with %s proofs'],
  ],
  'dpop_signing_alg_values_supported: Ed25519': [[DPOP, 'binds a token at /o/token and passes our REST API with %s proofs']],
  'dpop_signing_alg_values_supported: EdDSA': [[DPOP, 'binds a token at /o/token and passes our REST API with %s proofs']],

  pushed_authorization_request_endpoint: [
    [PAR, 'pushes the request, completes the code flow, and the request_uri works once'],
    [PAR, 'refuses a plain request from a client registered with require_pushed_authorization_requests'],
  ],
  'request_uri_parameter_supported: false': [[PAR, 'refuses a request_uri that its PAR endpoint did not issue (request_uri_parameter_supported is false)']],
  'request_parameter_supported: true': [
    [PAR, 'completes the code flow with a signed request object and private_key_jwt at the token endpoint'],
    [PAR, 'refuses an unsigned request object (alg none), at /o/auth and at the PAR endpoint'],
  ],
  'request_object_signing_alg_values_supported: RS256': [REQUEST_OBJECT_ALGS],
  'request_object_signing_alg_values_supported: PS256': [REQUEST_OBJECT_ALGS],
  'request_object_signing_alg_values_supported: ES256': [REQUEST_OBJECT_ALGS],
  'request_object_signing_alg_values_supported: Ed25519': [REQUEST_OBJECT_ALGS],
  'request_object_signing_alg_values_supported: EdDSA': [REQUEST_OBJECT_ALGS],
  'response_modes_supported: jwt': [JARM_MODES, [PAR, 'has openid-client refuse a tampered or unsigned response']],
  'response_modes_supported: query.jwt': [JARM_MODES],
  'response_modes_supported: fragment.jwt': [JARM_MODES],
  'response_modes_supported: form_post.jwt': [JARM_MODES],
  'authorization_signing_alg_values_supported: RS256': [JARM_ALGS],
  'authorization_signing_alg_values_supported: ES256': [JARM_ALGS],
  'token_endpoint_auth_methods_supported: private_key_jwt': [ASSERTION_ALGS, [PAR, 'refuses an assertion from an unregistered key, a replayed assertion, and a secret']],
  'token_endpoint_auth_signing_alg_values_supported: RS256': [ASSERTION_ALGS],
  'token_endpoint_auth_signing_alg_values_supported: PS256': [ASSERTION_ALGS],
  'token_endpoint_auth_signing_alg_values_supported: ES256': [ASSERTION_ALGS],
  'token_endpoint_auth_signing_alg_values_supported: Ed25519': [ASSERTION_ALGS],
  'token_endpoint_auth_signing_alg_values_supported: EdDSA': [ASSERTION_ALGS],

  'backchannel_logout_supported: true': [['integration/backchannel-logout.test.ts', 'sends the client a signed logout token when the person signs out']],
  'backchannel_logout_session_supported: true': [
    ['integration/backchannel-logout.test.ts', 'sends the client a signed logout token when the person signs out'],
  ],
};

/** Flattens discovery into items: `key` for strings, `key: value` for booleans and list values. */
export function discoveryItems(document: Record<string, unknown>): string[] {
  const items: string[] = [];
  for (const [key, value] of Object.entries(document)) {
    if (Array.isArray(value)) for (const entry of value) items.push(`${key}: ${String(entry)}`);
    else if (typeof value === 'boolean') items.push(`${key}: ${value}`);
    else if (typeof value === 'string') items.push(key);
    else throw new Error(`discovery item ${key} has a shape this test does not know: ${JSON.stringify(value)}`);
  }
  return items.sort();
}

const TEST_ROOT = path.resolve(import.meta.dirname, '..');

/** True when `file` (under test/) declares a test with exactly this title. */
function declaresTest(file: string, title: string): boolean {
  const full = path.join(TEST_ROOT, file);
  if (!fs.existsSync(full)) return false;
  const source = fs.readFileSync(full, 'utf8');
  // Quotes may appear backslash-escaped in the source; everything else literally.
  const escaped = [...title].map((c) => (`'"\``.includes(c) ? `\\\\?\\${c}` : c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`\\b(?:it|test)(?:\\.each\\([^)]*\\))?\\(\\s*(['"\`])${escaped}\\1`).test(source);
}

describe('discovery advertises exactly what the tests exercise', () => {
  let server: TestServer;
  let items: string[];

  beforeAll(async () => {
    server = await startTestServer('sqlite');
    const response = await fetch(`${server.issuer}/.well-known/openid-configuration`);
    items = discoveryItems((await response.json()) as Record<string, unknown>);
  });
  afterAll(async () => server?.stop());

  it('has a test for every item discovery advertises', () => {
    const untested = items.filter((item) => !(item in DISCOVERY_COVERAGE));
    expect(untested, 'advertised in discovery but not mapped to a test').toEqual([]);
  });

  it('advertises every item the coverage list claims', () => {
    const missing = Object.keys(DISCOVERY_COVERAGE).filter((item) => !items.includes(item));
    expect(missing, 'in the coverage list but not in discovery').toEqual([]);
  });

  it('names tests that exist', () => {
    const gone = Object.entries(DISCOVERY_COVERAGE).flatMap(([item, refs]) =>
      refs.filter(([file, title]) => !declaresTest(file, title)).map(([file, title]) => `${item} -> ${file}: ${title}`),
    );
    expect(gone).toEqual([]);
  });

  it('recognises a declared test and rejects an invented one (control)', () => {
    expect(declaresTest(FLOWS, 'revokes access and refresh tokens')).toBe(true);
    expect(declaresTest(FLOWS, 'revokes access and refresh tokens twice')).toBe(false);
    expect(declaresTest('integration/no-such-file.test.ts', 'anything')).toBe(false);
  });
});
