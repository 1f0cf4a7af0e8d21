import Koa from 'koa';
import Router from '@koa/router';
import type { Knex } from 'knex';
import { createAuthenticator } from './core/accounts/authenticate.js';
import { createIdentityConfirmation } from './core/accounts/confirm-identity.js';
import { createLoginThrottle } from './core/accounts/login-throttle.js';
import { createSecondFactor } from './core/two-factor/code-check.js';
import { loadSecretBox } from './core/two-factor/secret-box.js';
import { createTwoFactorService, type TwoFactorService } from './core/two-factor/settings.js';
import { createAuditRouter } from './web/api/audit-routes.js';
import { createAuditLog, type AuditLog } from './core/audit/audit-log.js';
import { createPasswordHasher, type PasswordHasher } from './core/accounts/password-hasher.js';
import type { Config } from './config.js';
import { openDatabase } from './storage/knex.js';
import { migrateLatest } from './storage/migrate.js';
import { createSweeper } from './core/maintenance/sweeper.js';
import { errorHandler } from './web/http/error-handler.js';
import { createHealthRouter } from './web/http/health.js';
import { createLogger, requestLog, type Logger } from './web/http/logger.js';
import { createMetrics, type Metrics } from './web/http/metrics.js';
import { mountProvider } from './web/http/mount-provider.js';
import { publicOrigin } from './web/http/public-origin.js';
import { securityHeaders } from './web/http/security-headers.js';
import { staticFiles } from './web/http/static-files.js';
import { createViews } from './web/http/views.js';
import { createAdminRouter } from './web/admin/routes.js';
import { ensureAdminClient } from './web/admin/admin-auth.js';
import { createApiTokens, type ApiTokens } from './core/tokens/api-tokens.js';
import { createClientService, type ClientService } from './core/clients/client-service.js';
import { createBearerResolver } from './web/api/bearer-auth.js';
import type { Guard } from './web/api/route-guard.js';
import { createDpopProofVerifier } from './web/api/dpop-proof.js';
import { createClientsRouter } from './web/api/clients-routes.js';
import { createResourceTokenVerifier } from './web/api/resource-access-tokens.js';
import { createResourcesRouter } from './web/api/resources-routes.js';
import { openApiDocument, type ApiRoute } from './web/api/openapi.js';
import { createTokenRouter } from './web/api/token-routes.js';
import { createUsersRouter } from './web/api/users-routes.js';
import { createMeRouter } from './web/api/me-routes.js';
import { createTwoFactorRouter } from './web/api/two-factor-routes.js';
import { createSelfService, type SelfService } from './core/accounts/self-service.js';
import { createUserService, type UserService } from './core/accounts/user-service.js';
import { createInteractionRouter } from './web/interaction/routes.js';
import { createEmailPagesRouter } from './web/account-center/email-pages.js';
import { createAccountCenterRouter, ensureAccountClient } from './web/account-center/center.js';
import { createEmailTokens } from './core/accounts/email-tokens.js';
import { createEmailVerification } from './core/accounts/email-verification.js';
import { createPasswordReset, RESET_REQUESTS_PER_ADDRESS, RESET_REQUESTS_PER_IP } from './core/accounts/password-reset.js';
import { createBackgroundJobs, type BackgroundJobs } from './core/mail/background.js';
import { createMailer } from './core/mail/mailer.js';
import { createKeyStore, type KeyStore } from './core/keys/key-store.js';
import { createProvider } from './oidc/provider.js';
import { hideStoredSecrets } from './oidc/hide-stored-secrets.js';
import { ensureFirstPartyClient } from './oidc/password-grant.js';
import { ProviderHost } from './oidc/provider-host.js';
import { createClientRepository, type ClientRepository } from './storage/clients.js';
import { createResourceRepository } from './storage/resources.js';
import { apiAudience } from './core/resources/built-in.js';
import { createResourceService, type ResourceService } from './core/resources/resource-service.js';
import { createTwoFactorRepository } from './storage/two-factor.js';
import { createUserRepository, type UserRepository } from './storage/users.js';

export interface Latchkey {
  app: Koa;
  config: Config;
  knex: Knex;
  users: UserRepository;
  clients: ClientRepository;
  keyStore: KeyStore;
  hasher: PasswordHasher;
  host: ProviderHost;
  apiTokens: ApiTokens;
  userService: UserService;
  selfService: SelfService;
  clientService: ClientService;
  /** API resources (RFC 8707), the built-in REST API resource included. */
  resourceService: ResourceService;
  /** Two-factor authentication (TOTP, recovery codes) of the accounts. */
  twoFactor: TwoFactorService;
  audit: AuditLog;
  /** Every REST route we serve (method, router path, the guard's rule), for OpenAPI and its tests. */
  apiRoutes: ApiRoute[];
  metrics: Metrics;
  logger: Logger;
  /** Work started after a response (sending mail); `settled()` waits for it. */
  background: BackgroundJobs;
  /** Deletes expired OIDC rows, API refresh tokens and retired keys; returns rows removed. */
  sweep(): Promise<number>;
  /** Stops timers, the hashing pool and the database pool. */
  close(): Promise<void>;
}

export interface CreateOptions {
  /** Where logs go; by default JSON lines on stdout at LOG_LEVEL. */
  logger?: Logger;
}

/**
 * Builds a ready Latchkey: database migrated, keys present, provider mounted at /o after
 * our own routes (health, static files, interaction pages).
 */
export async function createLatchkey(config: Config, options: CreateOptions = {}): Promise<Latchkey> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const log = (message: string, error?: unknown) => logger.error({ err: error }, message);
  const knex = openDatabase(config.database);
  try {
    await migrateLatest(knex);
    const keyStore = createKeyStore(knex);
    await keyStore.ensureKeys();
    const keys = await keyStore.load();

    const users = createUserRepository(knex);
    const clients = createClientRepository(knex);
    await ensureFirstPartyClient(clients);
    await ensureAdminClient(clients, config.publicUrl);
    await ensureAccountClient(clients, config.publicUrl);
    const hasher = createPasswordHasher({ cost: config.bcryptCost, nice: config.passwordHashNice });
    const audit = createAuditLog(knex);
    const throttle = createLoginThrottle(knex, config.throttle);
    const metrics = createMetrics({ knex, hashQueue: () => hasher.queueSize() });
    // Codes are counted by the login throttle under keys of their own (same limits).
    const twoFactorRepository = createTwoFactorRepository(knex);
    const twoFactorBox = await loadSecretBox(knex, 'two_factor');
    const secondFactor = createSecondFactor({ repository: twoFactorRepository, box: twoFactorBox, throttle, users, audit });
    const authenticate = createAuthenticator({ users, hasher, throttle, audit, secondFactor, metrics });
    const confirmIdentity = createIdentityConfirmation(authenticate);
    const twoFactor = createTwoFactorService({ repository: twoFactorRepository, box: twoFactorBox, secondFactor, confirmIdentity, audit });
    const views = createViews();
    const resourceService = createResourceService({ resources: createResourceRepository(knex), audit, publicUrl: config.publicUrl });
    const findResource = (identifier: string) => resourceService.findByIdentifier(identifier);
    const secureCookies = config.publicUrl.startsWith('https:');

    // Behind the proxy only the last X-Forwarded-For entry is the proxy's own: earlier ones
    // are whatever the client sent, and would let it pick its address (and evade IP limits).
    const app = new Koa({ proxy: config.trustProxy, maxIpsCount: 1 });
    const host = new ProviderHost(keys, keyStore, app, (material) =>
      createProvider({ config, knex, users, clients, views, keys: material, findResource, authenticate, audit, metrics, log, hasher }),
    );
    const provider = () => host.provider;
    const audience = apiAudience(config.publicUrl);
    const apiTokens = createApiTokens({ knex, issuer: config.issuer, audience, keys: () => host.keys, users });
    const verifyResourceToken = createResourceTokenVerifier({ issuer: config.issuer, audience, keys: () => host.keys });
    const mailer = createMailer(config.mail, logger);
    if (!config.mail.smtpUrl) {
      // Fine on a laptop; in production nobody would receive their links.
      const level = config.nodeEnv === 'production' ? 'warn' : 'info';
      logger[level]({ outbox: config.mail.outboxDir }, 'SMTP_URL is not set: mails are written to the outbox folder');
    }
    const background = createBackgroundJobs(log);
    const emailTokens = createEmailTokens(knex);
    // Mail asked for by people (reset links, verification links again): the login throttle's
    // table and sweep with the reset limits; the window must stay the login one, since the
    // login throttle's sweep deletes counters older than that. Keys are prefixed per purpose.
    const mailRequestThrottle = createLoginThrottle(knex, {
      accountMax: RESET_REQUESTS_PER_ADDRESS,
      ipMax: RESET_REQUESTS_PER_IP,
      windowSeconds: config.throttle.windowSeconds,
      lockoutSeconds: config.throttle.windowSeconds,
    });
    // What both kinds of mailed links (verification, reset) are made and sent with.
    const mailLinks = { tokens: emailTokens, mailer, jobs: background, audit, throttle: mailRequestThrottle, publicUrl: config.publicUrl };
    const verification = createEmailVerification({ users, ...mailLinks });
    const userService = createUserService({
      knex,
      audit,
      users,
      hasher,
      apiTokens,
      confirmIdentity,
      emailChanges: verification.emailChanges,
      onUnverifiedEmail: (user, reason) => verification.sendLater(user, reason),
    });
    const passwordReset = createPasswordReset({ users, userService, ...mailLinks });
    const clientService = createClientService({ knex, clients, provider, audit });
    const resolveBearer = createBearerResolver({
      users,
      clients,
      apiTokens,
      verifyResourceToken,
      audience,
      provider,
      verifyDpopProof: createDpopProofVerifier(knex),
      publicUrl: config.publicUrl,
    });
    const selfService = createSelfService({ knex, users, clients, hasher, confirmIdentity, apiTokens, audit, userService });

    const health = createHealthRouter({ knex, keys: () => host.keys });

    const interactions = createInteractionRouter({ provider, authenticate, secondFactor, users, views, secureCookies, findResource });
    const usersApi = createUsersRouter({
      users,
      userService,
      resolveBearer,
      allowRegistration: config.allowRegistration,
      publicUrl: config.publicUrl,
    });
    const tokensApi = createTokenRouter({
      authenticate,
      apiTokens,
      userService,
      provider,
      resolveBearer,
      allowRegistration: config.allowRegistration,
    });

    // First of all: nothing may see the Host or X-Forwarded-Host/Proto the client sent.
    app.use(publicOrigin(config.publicUrl));
    app.use(requestLog(logger));
    app.use(metrics.middleware());
    app.use(securityHeaders({ https: secureCookies }));
    app.use(errorHandler(views, log));
    app.use(metrics.endpoint(config.metricsToken));
    // The provider first: protocol requests (the hot path) skip our routers entirely; paths
    // it does not serve fall through to them (e.g. DOT's /o/applications/ redirects).
    app.use(hideStoredSecrets(clients, '/o'));
    app.use(mountProvider('/o', provider));
    app.use(staticFiles());
    app.use(health.routes()).use(health.allowedMethods());
    app.use(interactions.routes()).use(interactions.allowedMethods());
    const emailPages = createEmailPagesRouter({ verification, passwordReset, views, secureCookies });
    app.use(emailPages.routes()).use(emailPages.allowedMethods());
    const accountCenter = createAccountCenterRouter({
      provider,
      users,
      userService,
      selfService,
      verification,
      views,
      publicUrl: config.publicUrl,
      secureCookies,
      twoFactor,
      findResource,
    });
    app.use(accountCenter.routes()).use(accountCenter.allowedMethods());
    const docs = new Router();
    let openApi: ReturnType<typeof openApiDocument> | undefined;
    docs.get('/api/openapi.json', (ctx) => {
      ctx.body = openApi ??= openApiDocument(config.publicUrl, apiRoutes);
    });
    const admin = createAdminRouter({
      provider,
      host,
      users,
      userService,
      clientService,
      resourceService,
      twoFactor,
      keyStore,
      audit,
      views,
      publicUrl: config.publicUrl,
      secureCookies,
    });
    app.use(admin.routes()).use(admin.allowedMethods());
    const clientsApi = createClientsRouter({ clientService, resolveBearer, publicUrl: config.publicUrl });
    const auditApi = createAuditRouter({ audit, resolveBearer, publicUrl: config.publicUrl });
    const meApi = createMeRouter({ selfService, resolveBearer });
    const resourcesApi = createResourcesRouter({ resourceService, resolveBearer, publicUrl: config.publicUrl });
    const twoFactorApi = createTwoFactorRouter({ twoFactor, resolveBearer });
    const apiRouters = [usersApi, tokensApi, meApi, twoFactorApi, clientsApi, resourcesApi, auditApi, docs];
    for (const router of apiRouters) app.use(router.routes()).use(router.allowedMethods());
    const apiRoutes: ApiRoute[] = apiRouters.flatMap((router) =>
      router.stack.flatMap((layer) => {
        const rule = layer.stack.find((middleware): middleware is Guard => 'rule' in middleware)?.rule;
        return layer.methods.filter((m) => m !== 'HEAD').map((method) => ({ method, path: String(layer.path), ...(rule ? { rule } : {}) }));
      }),
    );

    const sweeper = createSweeper({ knex, intervalSeconds: config.sweepIntervalSeconds, throttle, metrics });
    const timers: NodeJS.Timeout[] = [];
    const every = (seconds: number, task: () => Promise<unknown>, what: string) => {
      if (seconds <= 0) return;
      const timer = setInterval(() => void task().catch((error) => log(`${what} failed`, error)), seconds * 1000);
      timer.unref();
      timers.push(timer);
    };
    every(config.sweepIntervalSeconds, () => sweeper.runIfDue(), 'sweeping expired rows');
    every(config.keyRefreshSeconds, () => host.refresh(), 'refreshing keys');

    return {
      app,
      config,
      knex,
      users,
      clients,
      keyStore,
      hasher,
      host,
      apiTokens,
      userService,
      selfService,
      clientService,
      resourceService,
      twoFactor,
      audit,
      apiRoutes,
      metrics,
      logger,
      background,
      sweep: () => sweeper.sweepNow(),
      async close() {
        for (const timer of timers) clearInterval(timer);
        // Mails in flight finish first: they still need the database and the mail server.
        await background.settled();
        mailer.close();
        await hasher.close();
        await knex.destroy();
      },
    };
  } catch (error) {
    await knex.destroy();
    throw error;
  }
}
