import Koa from 'koa';
import { createServices, type Services } from './composition.js';
import { createAuditRouter } from './web/api/audit-routes.js';
import type { Config } from './config.js';
import { errorHandler } from './web/http/error-handler.js';
import { unroutedErrors } from './web/http/error-pages.js';
import { createHealthRouter } from './web/http/health.js';
import { createLogger, type Logger } from './observability/logger.js';
import { requestLog } from './web/http/request-log.js';
import { metricsEndpoint, metricsMiddleware } from './web/http/metrics.js';
import { refuseNulInUrl } from './web/http/nul-bytes.js';
import { mountProvider } from './web/http/mount-provider.js';
import { publicOrigin } from './web/http/public-origin.js';
import { securityHeaders } from './web/http/security-headers.js';
import { staticFiles } from './web/http/static-files.js';
import { createViews } from './web/http/views.js';
import { createAdminRouter } from './web/admin/routes.js';
import { ensureAdminClient } from './web/admin/admin-auth.js';
import { createBearerResolver } from './web/api/bearer-auth.js';
import type { Guard } from './web/api/route-guard.js';
import { createDpopProofVerifier } from './web/api/dpop-proof.js';
import { createClientsRouter } from './web/api/clients-routes.js';
import { createResourceTokenVerifier } from './web/api/resource-access-tokens.js';
import { createResourcesRouter } from './web/api/resources-routes.js';
import { createGroupsRouter } from './web/api/groups-routes.js';
import { createOpenApiRouter, type ApiRoute } from './web/api/openapi.js';
import { createTokenRouter } from './web/api/token-routes.js';
import { createUsersRouter } from './web/api/users-routes.js';
import { createMeRouter } from './web/api/me-routes.js';
import { createTwoFactorRouter } from './web/api/two-factor-routes.js';
import { createInteractionRouter } from './web/interaction/routes.js';
import { createWelcomeRouter } from './web/front-door/welcome-page.js';
import { createSignupRouter, sendBrowsersToSignup } from './web/front-door/signup-pages.js';
import { createSetupRouter } from './web/front-door/setup-pages.js';
import { createEmailPagesRouter } from './web/account-center/email-pages.js';
import { createAccountCenterRouter, ensureAccountClient } from './web/account-center/center.js';
import { createProvider } from './oidc/provider.js';
import { hideStoredSecrets } from './oidc/hide-stored-secrets.js';
import { ensureFirstPartyClient } from './oidc/password-grant.js';
import { ProviderHost } from './oidc/provider-host.js';
import { apiAudience } from './core/resources/built-in.js';

/**
 * A running Latchkey: the layers below the web edge as src/composition.ts built them
 * (`storage`, `services`, `observability`), plus the web edge and the provider it mounts.
 */
export interface Latchkey extends Services {
  app: Koa;
  /** The running provider, rebuilt when the keys in the database change. */
  host: ProviderHost;
  /** Every REST route we serve (method, router path, the guard's rule), for OpenAPI and its tests. */
  apiRoutes: ApiRoute[];
  /** Deletes expired OIDC rows, API refresh tokens and retired keys; returns rows removed. */
  sweep(): Promise<number>;
  /** Stops timers, then everything the services hold (mail in flight, hashing pool, database pool). */
  close(): Promise<void>;
}

export interface CreateOptions {
  /** Where logs go; by default JSON lines on stdout at LOG_LEVEL. */
  logger?: Logger;
}

/**
 * Builds a ready Latchkey: the services (database migrated), keys present, provider mounted at
 * /o after our own routes (health, static files, interaction pages).
 */
export async function createLatchkey(config: Config, options: CreateOptions = {}): Promise<Latchkey> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const log = (message: string, error?: unknown) => logger.error({ err: error }, message);
  let host: ProviderHost | undefined;
  const hosted = () => {
    if (!host) throw new Error('the provider is not built yet');
    return host;
  };
  const root = await createServices(config, { logger, oidc: { provider: () => hosted().provider, keys: () => hosted().keys } });
  try {
    const { knex, users, clients } = root.storage;
    const { metrics } = root.observability;
    const { userService, selfService, clientService, resourceService, groupService, twoFactor, authenticate, secondFactor, verification, passwordReset, apiTokens, keyStore, audit, hasher, registration, initialSetup } =
      root.services;
    await keyStore.ensureKeys();
    const keys = await keyStore.load();
    await ensureFirstPartyClient(clients);
    await ensureAdminClient(clients);
    await ensureAccountClient(clients);
    if (!config.mail.smtpUrl) {
      // Fine on a laptop; in production nobody would receive their links.
      const level = config.nodeEnv === 'production' ? 'warn' : 'info';
      logger[level]({ outbox: config.mail.outboxDir }, 'SMTP_URL is not set: mails are written to the outbox folder');
    }
    // Front door: while no superuser exists, a one-time link to create the first one.
    const setupToken = await initialSetup.issueIfNeeded();
    if (setupToken) {
      logger.warn({ setup_url: `${config.publicUrl}/setup?token=${setupToken}` }, 'No administrator yet: open setup_url (works once, for 24 hours) to create the first superuser');
    }
    const views = createViews();
    const findResource = (identifier: string) => resourceService.findByIdentifier(identifier);
    const secureCookies = config.publicUrl.startsWith('https:');

    // Behind the proxy only the last X-Forwarded-For entry is the proxy's own: earlier ones
    // are whatever the client sent, and would let it pick its address (and evade IP limits).
    const app = new Koa({ proxy: config.trustProxy, maxIpsCount: 1 });
    host = new ProviderHost(keys, keyStore, app, (material) =>
      createProvider({ config, knex, users, clients, views, keys: material, findResource, authenticate, audit, metrics, log, hasher }),
    );
    const provider = () => hosted().provider;
    const audience = apiAudience(config.publicUrl);
    const verifyResourceToken = createResourceTokenVerifier({ issuer: config.issuer, audience, keys: () => hosted().keys });
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

    const health = createHealthRouter({ knex, keys: () => hosted().keys });

    const interactions = createInteractionRouter({ provider, authenticate, secondFactor, users, views, secureCookies, findResource, allowRegistration: config.allowRegistration });
    const usersApi = createUsersRouter({
      users,
      userService,
      groupsOf: (userId: number) => groupService.groupsOf(userId),
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
    app.use(metricsMiddleware(metrics));
    app.use(securityHeaders({ https: secureCookies }));
    app.use(errorHandler(views, log));
    app.use(unroutedErrors(views));
    app.use(refuseNulInUrl());
    app.use(metricsEndpoint(metrics, config.metricsToken));
    // The provider first: protocol requests (the hot path) skip our routers entirely; paths
    // it does not serve fall through to them (e.g. DOT's /o/applications/ redirects).
    app.use(hideStoredSecrets(clients, '/o'));
    app.use(mountProvider('/o', provider));
    app.use(staticFiles());
    app.use(health.routes()).use(health.allowedMethods());
    // Front door: the welcome page, sign-up, the first administrator's setup page.
    const frontDoor = [
      createWelcomeRouter({ views, issuer: config.issuer, publicUrl: config.publicUrl, allowRegistration: config.allowRegistration, initialSetup }),
      createSignupRouter({ registration, views, secureCookies, allowRegistration: config.allowRegistration }),
      createSetupRouter({ initialSetup, views, secureCookies }),
    ];
    for (const router of frontDoor) app.use(router.routes()).use(router.allowedMethods());
    app.use(sendBrowsersToSignup());
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
    const docs = createOpenApiRouter({ publicUrl: config.publicUrl, routers: () => apiRouters });
    const admin = createAdminRouter({
      provider,
      host: hosted(),
      users,
      userService,
      selfService,
      clientService,
      resourceService,
      groupService,
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
    const groupsApi = createGroupsRouter({ groupService, resolveBearer, publicUrl: config.publicUrl });
    const apiRouters = [usersApi, tokensApi, meApi, twoFactorApi, clientsApi, resourcesApi, groupsApi, auditApi, docs];
    for (const router of apiRouters) app.use(router.routes()).use(router.allowedMethods());
    const apiRoutes: ApiRoute[] = apiRouters.flatMap((router) =>
      router.stack.flatMap((layer) => {
        const rule = layer.stack.find((middleware): middleware is Guard => 'rule' in middleware)?.rule;
        return layer.methods.filter((m) => m !== 'HEAD').map((method) => ({ method, path: String(layer.path), ...(rule ? { rule } : {}) }));
      }),
    );

    const { sweeper } = root.services;
    const timers: NodeJS.Timeout[] = [];
    const every = (seconds: number, task: () => Promise<unknown>, what: string) => {
      if (seconds <= 0) return;
      const timer = setInterval(() => void task().catch((error) => log(`${what} failed`, error)), seconds * 1000);
      timer.unref();
      timers.push(timer);
    };
    every(config.sweepIntervalSeconds, () => sweeper.runIfDue(), 'sweeping expired rows');
    every(config.keyRefreshSeconds, () => hosted().refresh(), 'refreshing keys');

    return {
      ...root,
      app,
      host: hosted(),
      apiRoutes,
      sweep: () => sweeper.sweepNow(),
      async close() {
        for (const timer of timers) clearInterval(timer);
        await root.close();
      },
    };
  } catch (error) {
    await root.close();
    throw error;
  }
}
