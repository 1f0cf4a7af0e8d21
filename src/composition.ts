import type { Knex } from 'knex';
import type Provider from 'oidc-provider';
import type { Config } from './config.js';
import { createAuthenticator, type Authenticate } from './core/accounts/authenticate.js';
import { createIdentityConfirmation, type ConfirmIdentity } from './core/accounts/confirm-identity.js';
import { createEmailTokens } from './core/accounts/email-tokens.js';
import { createEmailVerification, type EmailVerification } from './core/accounts/email-verification.js';
import { createLoginThrottle } from './core/accounts/login-throttle.js';
import { createPasswordHasher, type PasswordHasher } from './core/accounts/password-hasher.js';
import { createPasswordReset, RESET_REQUESTS_PER_ADDRESS, RESET_REQUESTS_PER_IP, type PasswordReset } from './core/accounts/password-reset.js';
import { createSelfService, type SelfService } from './core/accounts/self-service.js';
import { createInitialSetup, type InitialSetup } from './core/accounts/initial-setup.js';
import { createRegistration, type Registration } from './core/accounts/registration.js';
import { createUserService, type UserService } from './core/accounts/user-service.js';
import { actorEntry, createAuditLog, type AuditActor, type AuditLog } from './core/audit/audit-log.js';
import { createClientService, validateClientInput, type ClientService } from './core/clients/client-service.js';
import type { ValidateClient } from './core/import/django-clients.js';
import type { ImportedTokenWriter } from './core/import/django-tokens.js';
import { createKeyStore, type KeyMaterial, type KeyStore } from './core/keys/key-store.js';
import { createBackgroundJobs, type BackgroundJobs } from './core/mail/background.js';
import { createMailer, type Mailer } from './core/mail/mailer.js';
import { createSweeper, type Sweeper } from './core/maintenance/sweeper.js';
import { apiAudience } from './core/resources/built-in.js';
import { createResourceService, type ResourceService } from './core/resources/resource-service.js';
import { createGroupService, type GroupService } from './core/groups/group-service.js';
import { createApiTokens, type ApiTokens } from './core/tokens/api-tokens.js';
import { createSecondFactor, type SecondFactor } from './core/two-factor/code-check.js';
import { loadSecretBox } from './core/two-factor/secret-box.js';
import { createTwoFactorService, type TwoFactorService } from './core/two-factor/settings.js';
import type { Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { createClientRepository, type ClientRepository } from './storage/clients.js';
import { openDatabase } from './storage/knex.js';
import { migrateLatest } from './storage/migrate.js';
import { poolStats } from './storage/pool-stats.js';
import { createResourceRepository, type ResourceRecord, type ResourceRepository } from './storage/resources.js';
import { createGroupRepository, type GroupRepository } from './storage/groups.js';
import { createTwoFactorRepository, type TwoFactorRepository } from './storage/two-factor.js';
import { createUserRepository, type UserRepository } from './storage/users.js';

/** The database and the repositories the edges and tests read directly (every SQL statement lives in src/storage). */
export interface StorageLayer {
  /** The pool: passed on to repositories, never queried outside src/storage (test/unit/layers.test.ts). */
  knex: Knex;
  users: UserRepository;
  clients: ClientRepository;
  resources: ResourceRepository;
  groups: GroupRepository;
  twoFactor: TwoFactorRepository;
}

/** The services (src/core): the rules every edge (pages, REST API, provider, CLI) goes through. */
export interface CoreServices {
  userService: UserService;
  selfService: SelfService;
  clientService: ClientService;
  /** API resources (RFC 8707), the built-in REST API resource included. */
  resourceService: ResourceService;
  /** Groups of accounts (imported from Django or made by staff) and their members. */
  groupService: GroupService;
  /** Two-factor authentication (TOTP, recovery codes) of the accounts. */
  twoFactor: TwoFactorService;
  /** Password (and second factor) checks at sign-in, throttled. */
  authenticate: Authenticate;
  /** The second factor's code checks at sign-in. */
  secondFactor: SecondFactor;
  /** Proof of presence for a person changing their own account. */
  confirmIdentity: ConfirmIdentity;
  /** Verification links (registration, email change) and password reset links. */
  verification: EmailVerification;
  passwordReset: PasswordReset;
  /** The REST API's own JWTs (/api/token/). */
  apiTokens: ApiTokens;
  keyStore: KeyStore;
  hasher: PasswordHasher;
  audit: AuditLog;
  mailer: Mailer;
  /** Work started after a response (sending mail); `settled()` waits for it. */
  background: BackgroundJobs;
  /** Deletes expired OIDC rows, API refresh tokens, retired keys and old throttle counters. */
  sweeper: Sweeper;
  /** The sign-up page's registrations (throttled per IP, verification mailed). */
  registration: Registration;
  /** The one-time links that create the first superuser in the browser. */
  initialSetup: InitialSetup;
}

export interface Observability {
  logger: Logger;
  metrics: Metrics;
}

/** Everything below the web edge, built once, in the layers it is drawn in (ARCHITECTURE.md). */
export interface Services {
  config: Config;
  /** Names of the migrations applied while opening (none when the schema was current). */
  migrationsApplied: string[];
  storage: StorageLayer;
  services: CoreServices;
  observability: Observability;
  /** Waits for mail in flight, then stops the mailer, the hashing pool and the database pool. */
  close(): Promise<void>;
}

/**
 * The provider, which is built after the services (it uses them): the client service
 * validates metadata with it and the API tokens are signed with its current keys. Read only
 * when a service needs it, never while building.
 */
export interface ProviderAccess {
  provider(): Provider;
  keys(): KeyMaterial;
}

export interface ServicesOptions {
  logger: Logger;
  oidc: ProviderAccess;
  /** For one command and exit (the CLI): one hashing thread, started only if a password is hashed. */
  oneShot?: boolean;
}

/**
 * The composition root below the web edge, shared by the server (src/app.ts), the CLI and the
 * tests: opens the database, migrates it, and builds the repositories and services once.
 */
export async function createServices(config: Config, { logger, oidc, oneShot = false }: ServicesOptions): Promise<Services> {
  const log = (message: string, error?: unknown) => logger.error({ err: error }, message);
  const knex = openDatabase(config.database);
  try {
    const migrationsApplied = await migrateLatest(knex);
    // The last wait while building: nothing started before it (the hashing pool) can leak.
    const twoFactorBox = await loadSecretBox(knex, 'two_factor');
    const storage: StorageLayer = {
      knex,
      users: createUserRepository(knex),
      clients: createClientRepository(knex),
      resources: createResourceRepository(knex),
      groups: createGroupRepository(knex),
      twoFactor: createTwoFactorRepository(knex),
    };
    const { users, clients } = storage;
    const hasher = createPasswordHasher({ cost: config.bcryptCost, nice: config.passwordHashNice, ...(oneShot ? { threads: 1, onDemand: true } : {}) });
    const metrics = createMetrics({ pool: () => poolStats(knex), hashQueue: () => hasher.queueSize() });
    const audit = createAuditLog(knex);
    const throttle = createLoginThrottle(knex, config.throttle);
    // Codes are counted by the login throttle under keys of their own (same limits).
    const secondFactor = createSecondFactor({ repository: storage.twoFactor, box: twoFactorBox, throttle, users, audit });
    const authenticate = createAuthenticator({ users, hasher, throttle, audit, secondFactor, metrics });
    const confirmIdentity = createIdentityConfirmation(authenticate);
    const twoFactor = createTwoFactorService({ repository: storage.twoFactor, box: twoFactorBox, secondFactor, confirmIdentity, audit });
    const resourceService = createResourceService({ resources: storage.resources, audit, publicUrl: config.publicUrl });
    const apiTokens = createApiTokens({ knex, issuer: config.issuer, audience: apiAudience(config.publicUrl), keys: oidc.keys, users, rotateRefresh: config.apiRotateRefreshTokens });
    const mailer = createMailer(config.mail, logger);
    const background = createBackgroundJobs(log);
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
    const mailLinks = { tokens: createEmailTokens(knex), mailer, jobs: background, audit, throttle: mailRequestThrottle, publicUrl: config.publicUrl };
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
    const services: CoreServices = {
      userService,
      selfService: createSelfService({ knex, users, clients, hasher, confirmIdentity, apiTokens, audit, userService }),
      clientService: createClientService({ knex, clients, provider: oidc.provider, audit, findResource: (identifier) => resourceService.findByIdentifier(identifier) }),
      resourceService,
      groupService: createGroupService({ knex, groups: storage.groups, users, audit }),
      twoFactor,
      authenticate,
      secondFactor,
      confirmIdentity,
      verification,
      passwordReset: createPasswordReset({ users, userService, ...mailLinks }),
      apiTokens,
      keyStore: createKeyStore(knex),
      hasher,
      audit,
      mailer,
      background,
      sweeper: createSweeper({ knex, intervalSeconds: config.sweepIntervalSeconds, throttle, metrics }),
      registration: createRegistration({ userService, throttle: mailRequestThrottle, audit }),
      initialSetup: createInitialSetup({ knex, userService, audit }),
    };
    return {
      config,
      migrationsApplied,
      storage,
      services,
      observability: { logger, metrics },
      async close() {
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

/** The services for one CLI command, with a provider built only if the command needs one. */
export interface CommandServices extends Services {
  /**
   * A provider on these services that serves no requests (no pages, no password grant): the
   * client service validates metadata with it, and initial access tokens are saved through it.
   * Built on first call, with the signing keys made if there are none yet.
   */
  provider(): Promise<Provider>;
  /** A new initial access token for dynamic client registration (RFC 7591), with our policy. */
  issueInitialAccessToken(expiresIn: number | undefined, by: AuditActor): Promise<string>;
}

/**
 * The composition root for the CLI: the same services as the server's, one hashing thread
 * started only when a password is hashed, and node-oidc-provider loaded only by the commands that need it.
 */
export async function createCommandServices(config: Config, { logger }: { logger: Logger }): Promise<CommandServices> {
  let built: { provider: Provider; keys: KeyMaterial } | undefined;
  const ready = () => {
    if (!built) throw new Error('the provider is not built yet');
    return built;
  };
  const root = await createServices(config, { logger, oneShot: true, oidc: { provider: () => ready().provider, keys: () => ready().keys } });
  const { storage, services } = root;

  async function provider(): Promise<Provider> {
    if (built) return built.provider;
    await services.keyStore.ensureKeys();
    const keys = await services.keyStore.load();
    const { createProvider } = await import('./oidc/provider.js');
    built = {
      keys,
      provider: createProvider({
        config,
        knex: storage.knex,
        users: storage.users,
        clients: storage.clients,
        keys,
        findResource: (identifier: string) => services.resourceService.findByIdentifier(identifier),
      }),
    };
    return built.provider;
  }

  return {
    ...root,
    provider,
    async issueInitialAccessToken(expiresIn, by) {
      const oidc = await provider();
      const { REGISTRATION_POLICY } = await import('./oidc/provider.js');
      const token = new oidc.InitialAccessToken({ ...(expiresIn ? { expiresIn } : {}), policies: [REGISTRATION_POLICY] });
      const value = await token.save();
      await services.audit.record('iat.created', { ...actorEntry(by), details: { expires_in: expiresIn ?? null } });
      return value;
    },
  };
}

/**
 * The database alone, migrated, for a command that must write nothing before its own
 * transaction (`import django --dry-run` leaves even a new database's first keys unmade);
 * closed after `fn`.
 */
export async function withMigratedDatabase<T>(config: Config, fn: (knex: Knex) => Promise<T>): Promise<T> {
  const knex = openDatabase(config.database);
  try {
    await migrateLatest(knex);
    return await fn(knex);
  } finally {
    await knex.destroy();
  }
}

/** What `import django` needs of a provider, built on its transaction. */
export interface ImportProvider {
  /** Checks client metadata as the server's provider would. */
  validateClient: ValidateClient;
  /** `--tokens`: saves DOT's tokens through the provider's models, for the Django resource. */
  tokenWriter(resource: ResourceRecord): ImportedTokenWriter;
}

/**
 * A provider (no pages) built on `knex`: an import's transaction, so whatever building it
 * writes (first signing keys) and every token it saves is rolled back with a dry run.
 */
export async function importProviderOn(config: Config, knex: Knex): Promise<ImportProvider> {
  const keyStore = createKeyStore(knex);
  await keyStore.ensureKeys();
  const { createProvider } = await import('./oidc/provider.js');
  const { importedTokenWriter } = await import('./oidc/imported-tokens.js');
  const resources = createResourceService({ resources: createResourceRepository(knex), audit: createAuditLog(knex), publicUrl: config.publicUrl });
  const provider = createProvider({
    config,
    knex,
    clients: createClientRepository(knex),
    users: createUserRepository(knex),
    keys: await keyStore.load(),
    findResource: (identifier: string) => resources.findByIdentifier(identifier),
  });
  return {
    validateClient: (input, metadata) => validateClientInput(provider, input, metadata),
    tokenWriter: (resource) => importedTokenWriter(provider, { ...resource, builtIn: false }),
  };
}

/** Checks client metadata as the server's provider would, with a provider built on `knex` (see importProviderOn). */
export async function clientValidatorOn(config: Config, knex: Knex): Promise<ValidateClient> {
  return (await importProviderOn(config, knex)).validateClient;
}
