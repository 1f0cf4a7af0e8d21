import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Authenticate } from '../core/accounts/authenticate.js';
import type { AuditLog } from '../core/audit/audit-log.js';
import { API_SCOPES_METADATA, apiScopesProblem } from '../core/clients/api-scopes.js';
import { SKIP_CONSENT_METADATA } from '../core/clients/skip-consent.js';
import { RESOURCE_SERVER_METADATA, resourceServerFor, resourceServerProblem } from '../core/clients/resource-server.js';
import { SUPPORTED_LOCALES } from '../locales/i18n.js';
import type { Metrics } from '../observability/metrics.js';
import type { Config } from '../config.js';
import { SIGNING_ALGORITHMS, type KeyMaterial } from '../core/keys/key-store.js';
import { clientSecretMatches, isClientSecretHash, type ClientRepository } from '../storage/clients.js';
import type { PasswordHasher } from '../core/accounts/password-hasher.js';
import type { UserRepository } from '../storage/users.js';
import { dotCompatibleAnswers } from './dot-compatible-answers.js';
import { introspectionCarriesUsername } from './introspection-username.js';
import { ACR_VALUES } from './acr.js';
import { deviceInputForm, providerPageTranslator, type PageRenderer } from './provider-pages.js';
import { createFindAccount } from './account.js';
import { OIDC_SCOPES, SCOPE_CLAIMS } from '../core/accounts/claims.js';
import { PAGE_CLIENT_IDS, withOwnPagesUris } from './first-party-pages.js';
import { createGroupRepository } from '../storage/groups.js';
import { KnexAdapter } from './adapter.js';
import { claimOnce, revokeClient } from '../storage/oidc-payloads.js';
import { CLOCK_TOLERANCE_SECONDS, ownTokensExpireOnTime } from './clock-tolerance.js';
import { accessTokenRevocationEndsOnlyIt, endsGrant, revokeRacedReplay } from './revocation.js';
import { registerPasswordGrant, type DjangoResourceFor } from './password-grant.js';
import { createImportLinkRepository } from '../storage/django-import-links.js';
import { createResourceRepository } from '../storage/resources.js';
import { ClientAdapter } from './client-adapter.js';
import { clientMetadataProblem } from '../core/clients/metadata-limits.js';
import { NulSafeAdapter } from './nul-safe-adapter.js';
import { resourceAwareTtl, resourceIndicators, type FindResource } from './resource-indicators.js';
import { TTL } from '../core/tokens/lifetimes.js';
import { apiAudience } from '../core/resources/built-in.js';

export interface ProviderDeps {
  config: Config;
  knex: Knex;
  users: UserRepository;
  clients: ClientRepository;
  /** The provider's own pages (device flow, logout, errors); absent where it serves no requests (the CLI's). */
  views?: PageRenderer;
  keys: KeyMaterial;
  /** The API resources (RFC 8707) tokens may be issued for; unknown ones are `invalid_target`. */
  findResource: FindResource;
  /** Checks passwords for the password grant; absent where the provider only validates clients. */
  authenticate?: Authenticate;
  /** Counts issued tokens per grant type when given. */
  metrics?: Metrics;
  /** Security events (token revocation, dynamic registration) go here when given. */
  audit?: AuditLog;
  /** Where unexpected provider errors are reported (the provider answers them as server_error). */
  log?: (message: string, error?: unknown) => void;
  /**
   * Verifies client secrets imported from django-oauth-toolkit 2 as Django password hashes,
   * off the event loop; absent, such a secret never matches.
   */
  hasher?: PasswordHasher;
}

/**
 * The library's prompts plus one login check: a browser session whose account was deleted or
 * deactivated must sign in again (the library would otherwise go on to consent without an
 * account and fail).
 */
function interactionPolicyWithAccountCheck() {
  const policy = interactionPolicy.base();
  policy.get('login')?.checks.add(
    new interactionPolicy.Check(
      'account_unavailable',
      'the signed-in account is no longer available',
      'login_required',
      (ctx) => Boolean(ctx.oidc.session?.accountId && !ctx.oidc.account),
    ),
  );
  return policy;
}

/**
 * Security events the provider knows about, into the audit log: revocations (at the
 * revocation endpoint and by reuse detection) and dynamic registrations. The token values
 * never go in; the request context comes from the provider's async-local storage.
 */
function recordProviderEvents(provider: Provider, audit: AuditLog, log?: (message: string, error?: unknown) => void): void {
  const record = (event: string, entry: Parameters<AuditLog['record']>[1]) =>
    void audit.record(event, entry).catch((error: unknown) => log?.('audit log write failed', error));
  const ctx = () => Provider.ctx as KoaContextWithOIDC | undefined;
  for (const kind of ['access_token', 'refresh_token', 'client_credentials'] as const) {
    // The typings list only some model events; the provider emits `<model>.destroyed` for all.
    (provider as unknown as NodeJS.EventEmitter).on(`${kind}.destroyed`, (token: { clientId?: string; accountId?: string }) => {
      const c = ctx();
      if (c?.oidc?.route !== 'revocation') return;
      record('token.revoked', {
        actor: token.clientId ?? 'unknown client',
        ...(c.ip ? { ip: c.ip } : {}),
        targetType: 'account',
        ...(token.accountId ? { targetId: token.accountId } : {}),
        details: { kind, client_id: token.clientId ?? null },
      });
    });
  }
  provider.on('grant.revoked', (c: KoaContextWithOIDC, grantId: string) => {
    record('grant.revoked', { actor: c.oidc?.client?.clientId ?? 'provider', ip: c.ip, targetType: 'grant', targetId: grantId, details: { route: c.oidc?.route ?? null } });
  });
  provider.on('registration_create.success', (c: KoaContextWithOIDC, client: { clientId: string }) => {
    record('client.registered', { actor: 'dynamic registration', ip: c.ip, targetType: 'client', targetId: client.clientId });
  });
  provider.on('registration_delete.success', (c: KoaContextWithOIDC, client: { clientId: string }) => {
    record('client.deleted', { actor: client.clientId, ip: c.ip, targetType: 'client', targetId: client.clientId, details: { via: 'rfc7592' } });
  });
}

/**
 * Algorithms a DPoP proof may be signed with (RFC 9449): asymmetric only, the library's own
 * default set. Discovery advertises it (dpop_signing_alg_values_supported) and our REST API
 * accepts exactly these, so a client needs one key for both.
 */
export const DPOP_SIGNING_ALGORITHMS = ['ES256', 'Ed25519', 'EdDSA'] as const;

/**
 * The library records each DPoP proof `jti` (and client assertion `jti`) through our adapter,
 * so every process sees it, but it checks with find-then-save: two requests carrying the same
 * proof, at one process or two, can both pass. One conditional INSERT settles the race; the
 * row id is the library's own (SHA-256 of issuer and jti).
 */
function atomicReplayDetection(provider: Provider, knex: Knex): void {
  provider.ReplayDetection.unique = async (iss: string, jti: string, exp: number) =>
    claimOnce(knex, 'ReplayDetection', createHash('sha256').update(`${iss}${jti}`).digest('base64url'), exp * 1000, { iss });
}

/** The policy every initial access token from `cli iat create` carries. */
export const REGISTRATION_POLICY = 'latchkey';
const REGISTRABLE_GRANTS = new Set(['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code']);

/** Dynamic registrants get the grants Latchkey offers to apps, never the legacy password grant. */
function registrableGrants(properties: Record<string, unknown>): void {
  const grants = Array.isArray(properties['grant_types']) ? (properties['grant_types'] as unknown[]) : ['authorization_code'];
  const refused = grants.filter((g) => typeof g !== 'string' || !REGISTRABLE_GRANTS.has(g));
  if (refused.length) {
    throw new errors.InvalidClientMetadata(`grant_types may only contain ${[...REGISTRABLE_GRANTS].join(', ')}`);
  }
}

/** RFC 8252 7.3: http is for loopback only; `localhost` too, as the library allows native apps. */
function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/**
 * Anyone holding an initial access token may register, so plain-http redirect URIs (codes and
 * tokens readable and changeable on the way) are refused except on the registrant's own
 * machine. The library allows http anywhere for web clients. Staff-made clients keep that
 * (developers use http://app.local); entries that are no URL or no string are the library's
 * to refuse.
 */
function secureRedirectUris(properties: Record<string, unknown>): void {
  for (const field of ['redirect_uris', 'post_logout_redirect_uris']) {
    const uris = properties[field];
    if (!Array.isArray(uris)) continue;
    for (const uri of uris) {
      const parsed = typeof uri === 'string' ? URL.parse(uri) : null;
      if (parsed?.protocol !== 'http:' || isLoopbackHost(parsed.hostname)) continue;
      const refused = new errors.InvalidRedirectUri();
      refused.error_description =
        `${field} may use http only on a loopback address (127.0.0.1, [::1] or localhost), RFC 8252 section 7.3: ` +
        `use https for ${parsed.href}`;
      throw refused;
    }
  }
}

/** Our policy for every registration and update through /o/reg (RFC 7591 / 7592). */
function registrationPolicy(_ctx: KoaContextWithOIDC, properties: Record<string, unknown>): void {
  const limits = clientMetadataProblem(properties);
  if (limits) throw new errors.InvalidClientMetadata(limits);
  registrableGrants(properties);
  secureRedirectUris(properties);
}

/**
 * `api_scopes` holds known API scopes only. Clients load without a request context; with one
 * it is dynamic registration (RFC 7591/7592), which may keep what staff set but never add.
 */
function validateApiScopesMetadata(ctx: KoaContextWithOIDC | undefined, key: string, value: unknown): void {
  if (key !== API_SCOPES_METADATA) return;
  const problem = apiScopesProblem(value);
  if (problem) throw new errors.InvalidClientMetadata(problem);
  if (ctx && value !== undefined && value !== ctx.oidc.client?.metadata()[API_SCOPES_METADATA]) {
    throw new errors.InvalidClientMetadata(`${API_SCOPES_METADATA} is granted by staff, not through registration`);
  }
}

/** Saves a browser session the library created during this request but never stored, and sets its cookie. */
async function storeNewSession(ctx: KoaContextWithOIDC, secure: boolean): Promise<void> {
  const session = ctx.oidc.session;
  if (!session || typeof session.exp === 'number') return;
  await session.save(TTL.Session);
  const { id } = session as unknown as { id: string };
  ctx.oidc.cookies.set(ctx.oidc.provider.cookieName('session'), id, { signed: true, httpOnly: true, sameSite: 'lax', secure });
}

/** `skip_consent` is a boolean; with a request context (registration) it may be kept, never set. */
function validateSkipConsentMetadata(ctx: KoaContextWithOIDC | undefined, key: string, value: unknown): void {
  if (key !== SKIP_CONSENT_METADATA) return;
  if (value !== undefined && typeof value !== 'boolean') throw new errors.InvalidClientMetadata(`${SKIP_CONSENT_METADATA} must be a boolean`);
  if (ctx && value !== undefined && value !== ctx.oidc.client?.metadata()[SKIP_CONSENT_METADATA]) {
    throw new errors.InvalidClientMetadata(`${SKIP_CONSENT_METADATA} is not set through registration`);
  }
}

/** `resource_server_for` is a list of resource identifiers; registration may keep it, never set or change it. */
function validateResourceServerMetadata(ctx: KoaContextWithOIDC | undefined, key: string, value: unknown): void {
  if (key !== RESOURCE_SERVER_METADATA) return;
  const problem = resourceServerProblem(value);
  if (problem) throw new errors.InvalidClientMetadata(problem);
  if (ctx && value !== undefined && JSON.stringify(value) !== JSON.stringify(ctx.oidc.client?.metadata()[RESOURCE_SERVER_METADATA])) {
    throw new errors.InvalidClientMetadata(`${RESOURCE_SERVER_METADATA} is set by staff, not through registration`);
  }
}

/** The Django site's API resource (made by `import django --tokens`), for clients that came from Django only. */
function djangoResourceFor(knex: Knex): DjangoResourceFor {
  return async (clientId, scopes) => {
    const links = createImportLinkRepository(knex);
    if (!(await links.isTarget('client', clientId))) return undefined;
    const resources = createResourceRepository(knex);
    for (const id of await links.targets('resource')) {
      const resource = await resources.find(Number(id));
      if (resource && scopes.every((s) => resource.scopes.includes(s))) return { ...resource, builtIn: false };
    }
    return undefined;
  };
}

/**
 * May `client` introspect `token`, issued to another client, as the resource server of the
 * token's audience? Access tokens (a person's or client_credentials) only, never refresh
 * tokens; the client authenticated (not public) and lists the audience in
 * `resource_server_for`; the issuing client still exists (the library reads it next, and
 * a deleted client's tokens are void anyway).
 */
async function introspectsAsResourceServer(
  provider: Provider,
  client: { clientAuthMethod?: string | undefined; metadata(): Record<string, unknown> },
  token: { kind: string; clientId?: string; aud?: unknown },
): Promise<boolean> {
  if (!client.clientAuthMethod || client.clientAuthMethod === 'none') return false;
  if (token.kind !== 'AccessToken' && token.kind !== 'ClientCredentials') return false;
  const served = resourceServerFor(client.metadata());
  if (!served.length) return false;
  const audiences = Array.isArray(token.aud) ? token.aud : [token.aud];
  if (!audiences.some((aud) => typeof aud === 'string' && served.includes(aud))) return false;
  return typeof token.clientId === 'string' && (await provider.Client.find(token.clientId)) !== undefined;
}

/** Path of our interaction pages for one interaction uid. */
export const interactionPath = (uid: string) => `/interaction/${uid}`;

/**
 * Builds node-oidc-provider on our storage, accounts, keys and pages. Cheap enough to call
 * again when keys rotate: all state lives in the database.
 */
export function createProvider({ config, knex, users, clients, views, keys, findResource, authenticate, audit, metrics, log, hasher }: ProviderDeps): Provider {
  const render: PageRenderer['render'] = (name, data, locale) => {
    if (!views) throw new Error(`no page renderer for "${name}": this provider serves no requests`);
    return views.render(name, data, locale);
  };
  const clientAdapter = new NulSafeAdapter(new ClientAdapter(clients, (clientId) => revokeClient(knex, clientId), withOwnPagesUris(config.publicUrl)));
  const adapters = new Map<string, NulSafeAdapter>();
  const secure = config.publicUrl.startsWith('https:');
  const groups = createGroupRepository(knex);
  // Adapters are made on first use, once the provider below exists.
  let provider: Provider | undefined;
  const onReplay = async (grantId: string) => revokeRacedReplay(provider!, knex, grantId);

  const configuration: Configuration = {
    adapter: (name: string) => {
      if (name === 'Client') return clientAdapter;
      let adapter = adapters.get(name);
      if (!adapter) adapters.set(name, (adapter = new NulSafeAdapter(new KnexAdapter(knex, name, { clockTolerance: CLOCK_TOLERANCE_SECONDS, onReplay }))));
      return adapter;
    },
    findAccount: createFindAccount(users, groups),
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    // What each revocation ends: see src/oidc/revocation.ts.
    revokeGrantPolicy: endsGrant,
    jwks: keys.jwks as Configuration['jwks'],
    cookies: {
      keys: keys.cookieKeys,
      long: { signed: true, httpOnly: true, sameSite: 'lax', secure },
      short: { signed: true, httpOnly: true, sameSite: 'lax', secure },
    },
    claims: {
      ...Object.fromEntries(Object.entries(SCOPE_CLAIMS).map(([scope, claims]) => [scope, [...claims]])),
      // How the person signed in (the session's acr and amr) goes into every ID token.
      openid: [...SCOPE_CLAIMS.openid, 'acr', 'amr'],
    },
    acrValues: [...ACR_VALUES],
    discovery: { ui_locales_supported: [...SUPPORTED_LOCALES] },
    scopes: [...OIDC_SCOPES],
    // 'none' only serves our admin pages (a login session without tokens); no implicit flow.
    responseTypes: ['code', 'none'],
    // Client secrets are stored hashed, so nothing may need the secret itself: no
    // client_secret_jwt and no HMAC algorithms (they key on the secret).
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    // Asymmetric only (no HS*: secrets are hashed) and never `none`: request objects must be
    // signed. Each of these is proven at the token endpoint and for request objects in
    // test/integration/par-jar-jarm.test.ts.
    enabledJWA: {
      clientAuthSigningAlgValues: ['RS256', 'PS256', 'ES256', 'Ed25519', 'EdDSA'],
      requestObjectSigningAlgValues: ['RS256', 'PS256', 'ES256', 'Ed25519', 'EdDSA'],
      dPoPSigningAlgValues: [...DPOP_SIGNING_ALGORITHMS],
      // JARM responses are signed with our own keys: only the algorithms the key store holds.
      authorizationSigningAlgValues: [...SIGNING_ALGORITHMS],
    },
    // Our own pages (admin, account center) need no consent screen. Their grant may have gone
    // with a password change that kept the session: it is made again rather than asked for.
    // A client with skip_consent gets the OpenID scopes and claims it asks for granted here;
    // API resource scopes still go through the consent page.
    loadExistingGrant: async (ctx) => {
      const client = ctx.oidc.client!;
      const session = ctx.oidc.session!;
      const grantId = ctx.oidc.result?.['consent']?.grantId ?? session.grantIdFor(client.clientId);
      const found = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      if (client.metadata()[SKIP_CONSENT_METADATA] === true && session.accountId) {
        const grant = found ?? new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
        const scope = [...ctx.oidc.requestParamOIDCScopes].join(' ');
        if (scope) grant.addOIDCScope(scope);
        const claims = [...ctx.oidc.requestParamClaims];
        if (claims.length) grant.addOIDCClaims(claims);
        await grant.save();
        return grant;
      }
      if (found || !PAGE_CLIENT_IDS.has(client.clientId) || !session.accountId) return found;
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope('openid');
      await grant.save();
      return grant;
    },
    allowOmittingSingleRegisteredRedirectUri: false,
    // Access JWTs for our own REST API name their grant and login session, so the API can
    // refuse them once the grant is revoked (a JWT cannot be revoked by itself) and a password
    // change can keep the calling app's grant. Other resources never see our internals.
    // An access token with the `groups` scope carries the person's group names as they were
    // when it was issued (introspection shows them, as the ID token and userinfo do).
    extraTokenClaims: async (_ctx, token) => {
      const { accountId, scope } = token as { accountId?: string; scope?: string };
      const withGroups = token.kind === 'AccessToken' && accountId !== undefined && (scope ?? '').split(' ').includes('groups');
      const groupClaim = withGroups ? { groups: await groups.namesForUser(Number(accountId)) } : undefined;
      const audience = (token as { resourceServer?: { audience?: string } }).resourceServer?.audience;
      if (token.kind !== 'AccessToken' || audience !== apiAudience(config.publicUrl)) return groupClaim;
      const { grantId, sessionUid, expiresWithSession } = token as { grantId?: string; sessionUid?: string; expiresWithSession?: boolean };
      return {
        ...groupClaim,
        ...(grantId ? { grant_id: grantId } : {}),
        ...(sessionUid ? { session_uid: sessionUid } : {}),
        // Without offline_access it ends with the login session, as the opaque tokens do.
        ...(sessionUid && expiresWithSession ? { session_bound: true } : {}),
      };
    },
    // Which scopes of our REST API a client may ask for: staff decide, registrants cannot.
    extraClientMetadata: {
      properties: [API_SCOPES_METADATA, SKIP_CONSENT_METADATA, RESOURCE_SERVER_METADATA],
      validator: (ctx, key, value) => {
        validateApiScopesMetadata(ctx, key, value);
        validateSkipConsentMetadata(ctx, key, value);
        validateResourceServerMetadata(ctx, key, value);
      },
    },
    // Tokens issued for an API resource live as long as the resource says.
    ttl: { ...TTL, AccessToken: resourceAwareTtl(TTL.AccessToken), ClientCredentials: resourceAwareTtl(TTL.ClientCredentials) },
    // Refresh tokens for every client allowed the grant (as Keycloak and django-oauth-toolkit
    // do); without offline_access they die with the login session.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    // The provider guards its outgoing calls against special-use addresses (SSRF); an
    // operator whose relying parties live on a private network may lift that.
    ...(config.allowPrivateNetworkCalls
      ? {
          fetch: (url: string | URL | Request, options?: RequestInit) => {
            const { dispatcher: _ssrfGuard, ...rest } = (options ?? {}) as RequestInit & { dispatcher?: unknown };
            return globalThis.fetch(url, rest);
          },
        }
      : {}),
    // The library's own rule, stated here (its default prints a notice into our JSON logs):
    // browsers may call userinfo, and public clients the token endpoints, from the origins of
    // the client's redirect URIs.
    clientBasedCORS: (ctx, origin, client) => {
      if (origin === 'null') return false;
      if (ctx.oidc.route !== 'userinfo' && client.clientAuthMethod !== 'none') return false;
      return (client.redirectUris ?? []).some((uri) => URL.canParse(uri) && new URL(uri).origin === origin);
    },
    interactions: {
      policy: interactionPolicyWithAccountCheck(),
      url: (_ctx, interaction) => interactionPath(interaction.uid),
    },
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
      // OIDC Back-Channel Logout 1.0: clients with a backchannel_logout_uri get a logout token.
      backchannelLogout: { enabled: true },
      // RFC 8628: devices without a browser show a code that a person enters at /o/device.
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        userCodeInputSource: async (ctx: KoaContextWithOIDC, form: string, _out: unknown, err?: { name?: string; userCode?: string }) => {
          // On an error the library puts a fresh form secret into the browser's session after
          // its session middleware has finished; a browser without a session (POST /o/device
          // from a script, a made-up /o/device/<uid>) then has one that was never stored, and
          // the library's final save of it threw: a 500. Stored here, the form it renders works.
          if (err) await storeNewSession(ctx, secure);
          const i18n = providerPageTranslator(ctx);
          let message: string | null = null;
          if (err?.userCode || err?.name === 'NoCodeError') message = i18n.t('device.error.code');
          else if (err?.name === 'AbortedError') message = i18n.t('device.error.aborted');
          else if (err) message = i18n.t('device.error.other');
          ctx.type = 'html';
          ctx.body = render('device-input', { form: deviceInputForm(form, i18n), message }, i18n.locale);
        },
        userCodeConfirmSource: async (ctx: KoaContextWithOIDC, form: string, client: { clientName?: string; clientId: string }, deviceInfo: { ip?: string; ua?: string } | undefined, userCode: string) => {
          ctx.type = 'html';
          ctx.body = render('device-confirm', {
            form,
            clientName: client.clientName ?? client.clientId,
            userCode,
            device: deviceInfo?.ip ?? null,
          }, providerPageTranslator(ctx).locale);
        },
        successSource: async (ctx: KoaContextWithOIDC) => {
          ctx.type = 'html';
          ctx.body = render('device-success', { clientName: ctx.oidc.client?.clientName ?? null }, providerPageTranslator(ctx).locale);
        },
      },
      clientCredentials: { enabled: true },
      // RFC 9449 DPoP: a client that sends a proof to /o/token gets tokens bound to its key
      // (token_type DPoP; a public client's refresh token too), usable at userinfo and our
      // REST API only with a fresh proof from that key. dpop_bound_access_tokens clients must.
      // No server nonces (see README, "DPoP"): they would need one secret in every process and
      // break for a moment at each cookie-key rotation. Replay is stopped instead by the proof
      // jti store, which lives in the shared database (atomicReplayDetection below), and the
      // library's 300 s iat window.
      dPoP: { enabled: true, allowReplay: false, requireNonce: () => false },
      // RFC 9126: required for every client with REQUIRE_PAR, else per client
      // (require_pushed_authorization_requests). Registered redirect URIs only.
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: config.requirePar, allowUnregisteredRedirectUris: false },
      // RFC 9101 request objects, verified with the client's jwks / jwks_uri; per client
      // require_signed_request_object.
      requestObjects: { enabled: true, requireSignedRequestObject: false },
      // JARM: response_mode=jwt (and query.jwt, fragment.jwt, form_post.jwt), signed with our keys.
      jwtResponseModes: { enabled: true },
      // RFC 8707 resource indicators for the registered API resources; RFC 9068 JWTs for those
      // that ask for them (see resource-indicators.ts for the rules).
      resourceIndicators: resourceIndicators(findResource, djangoResourceFor(knex)),
      introspection: {
        enabled: true,
        // A client learns about its own tokens, and a resource server (resource_server_for)
        // about the access tokens issued to others for its audience; a deactivated or deleted
        // user's tokens stop being active at once (the library does not look the account up
        // here). Anything else is {"active": false}.
        allowedPolicy: async (ctx, client, token) => {
          if (token.clientId !== client.clientId && !(await introspectsAsResourceServer(ctx.oidc.provider, client, token))) return false;
          const accountId = 'accountId' in token ? token.accountId : undefined;
          if (typeof accountId !== 'string') return true;
          return (await users.findById(accountId))?.isActive === true;
        },
      },
      revocation: {
        enabled: true,
        // A client revokes only its own tokens: a public client's foreign token is silently
        // ignored (RFC 7009 answers 200), a confidential client is told it may not.
        allowedPolicy: async (_ctx, client, token) => {
          if (token.clientId === client.clientId) return true;
          if (client.clientAuthMethod === 'none') return false;
          throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
        },
      },
      // RFC 7591/7592, only with an initial access token (`cli iat create`); the tokens the
      // CLI makes carry our policy, which keeps registrants to the grants we support.
      registration: {
        enabled: true,
        initialAccessToken: true,
        policies: { [REGISTRATION_POLICY]: registrationPolicy },
      },
      registrationManagement: { enabled: true, rotateRegistrationAccessToken: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx: KoaContextWithOIDC, form: string) => {
          ctx.type = 'html';
          ctx.body = render('logout', {
            form,
            clientName: ctx.oidc.client?.clientName ?? null,
          }, providerPageTranslator(ctx).locale);
        },
        postLogoutSuccessSource: async (ctx: KoaContextWithOIDC) => {
          ctx.type = 'html';
          ctx.body = render('logged-out', {
            clientName: ctx.oidc.client?.clientName ?? null,
          }, providerPageTranslator(ctx).locale);
        },
      },
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = render('error', {
        error: out.error,
        description: out.error_description ?? '',
      }, providerPageTranslator(ctx).locale);
    },
  };

  provider = new Provider(config.issuer, configuration);
  provider.proxy = config.trustProxy;
  accessTokenRevocationEndsOnlyIt(provider);
  ownTokensExpireOnTime(provider);
  registerPasswordGrant(provider, authenticate, djangoResourceFor(knex));
  atomicReplayDetection(provider, knex);
  introspectionCarriesUsername(provider, users);
  dotCompatibleAnswers(provider);
  if (audit) recordProviderEvents(provider, audit, log);
  if (metrics) {
    provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
      metrics.tokens.inc({ grant_type: String(ctx.oidc.params?.['grant_type'] ?? 'unknown') });
    });
  }
  if (log) {
    provider.on('backchannel.error', (_ctx: KoaContextWithOIDC, error: unknown, client: { clientId: string }) =>
      log(`back-channel logout to client ${client.clientId} failed`, error),
    );
  }
  if (log) provider.on('server_error', (ctx: KoaContextWithOIDC, error: unknown) => log(`provider error on ${ctx.method} ${ctx.path}`, error));
  // Secrets are stored as SHA-256 hashes; the provider holds the hash where it would hold the
  // secret, and this comparison hashes what the client presents. A secret imported from
  // django-oauth-toolkit 2 is a Django password hash instead: verified as stored (in the
  // hashing pool), then replaced by its SHA-256, so it costs a slow hash once.
  provider.Client.prototype.compareClientSecret = async function compare(this: { clientSecret?: string; clientId: string }, actual: string) {
    const stored = this.clientSecret;
    if (typeof stored !== 'string') return false;
    if (isClientSecretHash(stored)) return clientSecretMatches(stored, actual);
    if (!hasher || !(await hasher.verify(actual, stored))) return false;
    await clients.setSecret(this.clientId, actual);
    await audit?.record('client.secret_upgraded', { actor: this.clientId, targetType: 'client', targetId: this.clientId, details: { from: hasher.algorithmOf(stored) } });
    return true;
  };
  return provider;
}
