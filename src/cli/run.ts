import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Knex } from 'knex';
import { createPasswordHasher } from '../core/accounts/password-hasher.js';
import { passwordProblem } from '../core/accounts/password-policy.js';
import { emailProblem, usernameProblem } from '../core/accounts/user-input.js';
import { registerClient } from '../core/clients/client-service.js';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { openDatabase } from '../storage/knex.js';
import { migrateLatest } from '../storage/migrate.js';
import { createAuditLog } from '../core/audit/audit-log.js';
import { createViews } from '../web/http/views.js';
import { createKeyStore } from '../core/keys/key-store.js';
import { sweepAll } from '../core/maintenance/sweep.js';
import { RETIRED_KEY_RETENTION_MS } from '../oidc/ttl.js';
import { createClientRepository, TOKEN_ENDPOINT_AUTH_METHODS, type JwkSet, type NewClient, type TokenEndpointAuthMethod } from '../storage/clients.js';
import { createResourceRepository } from '../storage/resources.js';
import { resourceJson, createResourceService, type ResourceService } from '../core/resources/resource-service.js';
import { DomainError, InvalidInput } from '../core/errors.js';
import { createUserRepository, DuplicateUserError } from '../storage/users.js';
import { ask, interactive } from './prompt.js';
import { CliError } from './cli-error.js';
import { IMPORT_USAGE, importCommand } from './import-django.js';

const USAGE = `usage: npm run --silent cli -- <command>
  migrate
  createsuperuser [--username U] [--email E] [--password P]
  client create --name N [--redirect-uri URI]... [--grant-type G]... [--public]
                [--scope "openid profile email"] [--post-logout-redirect-uri URI]...
                [--backchannel-logout-uri URI] [--dpop-bound] [--token-endpoint-auth-method M]
                [--api-scope users:read|users:write|account|admin]...
                [--jwks-file PATH | --jwks-uri URI] [--require-par]
                [--require-signed-request-object] [--json]
  client list [--json]
  resource create --identifier URI [--name N] [--scope S]... [--ttl SECONDS]
                  [--format jwt|opaque] [--json]
  resource list [--json]
  resource delete --identifier URI
  iat create [--expires-in SECONDS] [--json]
  keys rotate [--json]
  keys list [--json]
  cleanup [--json]
${IMPORT_USAGE}`;

type Out = (line: string) => void;

async function withDatabase<T>(config: Config, fn: (knex: Knex) => Promise<T>): Promise<T> {
  const knex = openDatabase(config.database);
  try {
    await migrateLatest(knex);
    return await fn(knex);
  } finally {
    await knex.destroy();
  }
}

type Values = Record<string, string | boolean | Array<string | boolean> | undefined>;

function options(args: string[], spec: ParseArgsConfig['options']): Values {
  try {
    return parseArgs({ args, options: spec, allowPositionals: false, strict: true }).values as Values;
  } catch (error) {
    throw new CliError(`${(error as Error).message} (see: npm run cli -- help)`, 2);
  }
}

async function migrate(config: Config, out: Out): Promise<void> {
  const knex = openDatabase(config.database);
  try {
    const applied = await migrateLatest(knex);
    out(applied.length ? `applied ${applied.length} migration(s): ${applied.join(', ')}` : 'database is up to date');
  } finally {
    await knex.destroy();
  }
}

async function createSuperuser(config: Config, args: string[], out: Out): Promise<void> {
  const v = options(args, { username: { type: 'string' }, email: { type: 'string' }, password: { type: 'string' } });
  const tty = interactive();
  const need = (value: unknown, what: string) => {
    if (typeof value === 'string' && value !== '') return value;
    if (!tty) throw new CliError(`--${what} is required (no terminal to ask on)`);
    return undefined;
  };
  const username = need(v['username'], 'username') ?? (await ask('Username: ')).trim();
  const email = need(v['email'], 'email') ?? (await ask('Email: ')).trim();
  let password = need(v['password'], 'password');
  if (password === undefined) {
    password = await ask('Password: ', { hidden: true });
    if ((await ask('Password (again): ', { hidden: true })) !== password) throw new CliError('passwords do not match');
  }
  const problem = usernameProblem(username) ?? emailProblem(email) ?? passwordProblem(password);
  if (problem) throw new CliError(problem.message);

  const hasher = createPasswordHasher({ cost: config.bcryptCost, threads: 1 });
  try {
    await withDatabase(config, async (knex) => {
      const users = createUserRepository(knex);
      const user = await users.create({
        username,
        email,
        passwordHash: await hasher.hash(password),
        isStaff: true,
        isSuperuser: true,
        emailVerified: true,
      });
      await createAuditLog(knex).record('user.created', {
        actor: 'cli',
        targetType: 'user',
        targetId: user.id,
        details: { username: user.username, is_staff: true, is_superuser: true },
      });
      out(`superuser "${user.username}" created with id ${user.id}`);
    });
  } catch (error) {
    if (error instanceof DuplicateUserError) throw new CliError(`a user with that ${error.field} already exists`);
    throw error;
  } finally {
    await hasher.close();
  }
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : typeof value === 'string' ? [value] : [];
}

/** `client create` options for client authentication, keys, PAR and request objects. */
const KEY_OPTIONS = {
  'token-endpoint-auth-method': { type: 'string' },
  'jwks-file': { type: 'string' },
  'jwks-uri': { type: 'string' },
  'require-par': { type: 'boolean' },
  'require-signed-request-object': { type: 'boolean' },
} as const;

async function keyOptionsInput(v: Values): Promise<Partial<NewClient>> {
  const method = v['token-endpoint-auth-method'];
  if (method !== undefined && !(TOKEN_ENDPOINT_AUTH_METHODS as readonly unknown[]).includes(method)) {
    throw new CliError(`--token-endpoint-auth-method must be one of ${TOKEN_ENDPOINT_AUTH_METHODS.join(', ')}`);
  }
  let jwks: JwkSet | undefined;
  if (typeof v['jwks-file'] === 'string') {
    let text: string;
    try {
      text = await readFile(v['jwks-file'], 'utf8');
    } catch (error) {
      throw new CliError(`cannot read --jwks-file: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    try {
      jwks = JSON.parse(text) as JwkSet;
    } catch {
      throw new CliError('--jwks-file is not JSON (expected a JWK Set: {"keys": [...]})');
    }
  }
  return {
    ...(method !== undefined ? { tokenEndpointAuthMethod: method as TokenEndpointAuthMethod } : {}),
    ...(jwks !== undefined ? { jwks } : {}),
    ...(typeof v['jwks-uri'] === 'string' ? { jwksUri: v['jwks-uri'] } : {}),
    ...(v['require-par'] === true ? { requirePushedAuthorizationRequests: true } : {}),
    ...(v['require-signed-request-object'] === true ? { requireSignedRequestObject: true } : {}),
  };
}

async function clientCommand(config: Config, args: string[], out: Out): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'create') {
    const v = options(rest, {
      name: { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      'post-logout-redirect-uri': { type: 'string', multiple: true },
      'backchannel-logout-uri': { type: 'string' },
      'grant-type': { type: 'string', multiple: true },
      scope: { type: 'string' },
      'api-scope': { type: 'string', multiple: true },
      public: { type: 'boolean' },
      'dpop-bound': { type: 'boolean' },
      json: { type: 'boolean' },
      ...KEY_OPTIONS,
    });
    if (typeof v['name'] !== 'string' || !v['name'].trim()) throw new CliError('--name is required');
    const keyInput = await keyOptionsInput(v);
    await withDatabase(config, async (knex) => {
      const clients = createClientRepository(knex);
      const provider = await providerFor(config, knex);
      const { client, clientSecret } = await registerClient(
        { clients, provider },
        {
          name: String(v['name']),
          redirectUris: strings(v['redirect-uri']),
          postLogoutRedirectUris: strings(v['post-logout-redirect-uri']),
          grantTypes: strings(v['grant-type']),
          ...(v['public'] === true ? { isPublic: true } : {}),
          ...(typeof v['scope'] === 'string' ? { scope: v['scope'] } : {}),
          ...(typeof v['backchannel-logout-uri'] === 'string' ? { backchannelLogoutUri: v['backchannel-logout-uri'] } : {}),
          dpopBoundAccessTokens: v['dpop-bound'] === true,
          // Each --api-scope may also hold several, space-separated.
          apiScopes: strings(v['api-scope']).flatMap((s) => s.split(/\s+/)).filter(Boolean),
          ...keyInput,
        },
      );
      await createAuditLog(knex).record('client.created', { actor: 'cli', targetType: 'client', targetId: client.clientId, details: { name: client.name } });
      if (v['json']) {
        out(JSON.stringify({ client_id: client.clientId, ...(clientSecret ? { client_secret: clientSecret } : {}) }));
      } else {
        out(`client_id:     ${client.clientId}`);
        if (clientSecret) out(`client_secret: ${clientSecret}   (shown once: store it now)`);
      }
    });
    return;
  }
  if (sub === 'list') {
    const v = options(rest, { json: { type: 'boolean' } });
    await withDatabase(config, async (knex) => {
      const list = await createClientRepository(knex).list();
      if (v['json']) {
        out(JSON.stringify(list.map((c) => ({ client_id: c.clientId, name: c.name, public: c.isPublic, ...c.metadata, created_at: new Date(c.createdAt).toISOString() }))));
      } else if (list.length === 0) {
        out('no clients');
      } else {
        for (const c of list) out(`${c.clientId}  ${c.isPublic ? 'public      ' : 'confidential'}  ${c.name}`);
      }
    });
    return;
  }
  throw new CliError(`unknown client command "${sub ?? ''}" (see: npm run cli -- help)`, 2);
}

function resourceServiceFor(config: Config, knex: Knex): ResourceService {
  return createResourceService({ resources: createResourceRepository(knex), audit: createAuditLog(knex), publicUrl: config.publicUrl });
}

/** The CLI flag each resource field comes from, to name it in an error. */
const RESOURCE_FLAGS: Record<string, string> = {
  identifier: '--identifier',
  name: '--name',
  scopes: '--scope',
  access_token_ttl: '--ttl',
  access_token_format: '--format',
};

/** One line for the service's per-field problems, in English, under the options' names. */
function validationLine(error: InvalidInput): string {
  return Object.entries(error.fields)
    .map(([field, problems]) => `${RESOURCE_FLAGS[field] ?? field}: ${problems.map((p) => p.message).join(' ')}`)
    .join('; ');
}

async function resourceCommand(config: Config, args: string[], out: Out): Promise<void> {
  const [sub, ...rest] = args;
  const by = { label: 'cli' };
  try {
    if (sub === 'create') {
      const v = options(rest, {
        identifier: { type: 'string' },
        name: { type: 'string' },
        scope: { type: 'string', multiple: true },
        ttl: { type: 'string' },
        format: { type: 'string' },
        json: { type: 'boolean' },
      });
      if (typeof v['identifier'] !== 'string' || !v['identifier'].trim()) throw new CliError('--identifier is required');
      const ttl = v['ttl'];
      if (ttl !== undefined && (typeof ttl !== 'string' || !/^\d{1,9}$/.test(ttl))) throw new CliError('--ttl must be a whole number of seconds');
      await withDatabase(config, async (knex) => {
        const resource = await resourceServiceFor(config, knex).create(
          {
            identifier: v['identifier'] as string,
            ...(typeof v['name'] === 'string' ? { name: v['name'] } : {}),
            // Each --scope may also hold several, space-separated.
            scopes: strings(v['scope']).flatMap((s) => s.split(/\s+/)).filter(Boolean),
            ...(typeof ttl === 'string' ? { accessTokenTtl: Number(ttl) } : {}),
            ...(typeof v['format'] === 'string' ? { accessTokenFormat: v['format'] } : {}),
          },
          by,
        );
        if (v['json']) out(JSON.stringify(resourceJson(resource)));
        else out(`resource ${resource.identifier} created (id ${resource.id}; scopes: ${resource.scopes.join(' ') || 'none'}; ${resource.accessTokenFormat} tokens for ${resource.accessTokenTtl}s)`);
      });
      return;
    }
    if (sub === 'list') {
      const v = options(rest, { json: { type: 'boolean' } });
      await withDatabase(config, async (knex) => {
        const list = await resourceServiceFor(config, knex).list();
        if (v['json']) out(JSON.stringify(list.map(resourceJson)));
        else for (const r of list) out(`${r.id}  ${r.identifier}  ${r.accessTokenFormat}  ${r.accessTokenTtl}s  ${r.scopes.join(' ') || '-'}${r.builtIn ? '  (built-in)' : ''}`);
      });
      return;
    }
    if (sub === 'delete') {
      const v = options(rest, { identifier: { type: 'string' } });
      if (typeof v['identifier'] !== 'string' || !v['identifier']) throw new CliError('--identifier is required');
      await withDatabase(config, async (knex) => {
        const removed = await resourceServiceFor(config, knex).removeByIdentifier(v['identifier'] as string, by);
        out(`resource ${removed.identifier} deleted`);
      });
      return;
    }
  } catch (error) {
    if (error instanceof InvalidInput) throw new CliError(validationLine(error));
    throw error;
  }
  throw new CliError(`unknown resource command "${sub ?? ''}" (see: npm run cli -- help)`, 2);
}

/** Builds a provider on this database (client validation, initial access tokens). */
async function providerFor(config: Config, knex: Knex) {
  const keyStore = createKeyStore(knex);
  await keyStore.ensureKeys();
  // Loaded on demand: only these commands need node-oidc-provider.
  const { createProvider } = await import('../oidc/provider.js');
  return createProvider({
    config,
    knex,
    clients: createClientRepository(knex),
    users: createUserRepository(knex),
    views: createViews(),
    keys: await keyStore.load(),
    findResource: (identifier: string) => resourceServiceFor(config, knex).findByIdentifier(identifier),
  });
}

async function iatCommand(config: Config, args: string[], out: Out): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== 'create') throw new CliError(`unknown iat command "${sub ?? ''}" (see: npm run cli -- help)`, 2);
  const v = options(rest, { 'expires-in': { type: 'string' }, json: { type: 'boolean' } });
  const raw = v['expires-in'];
  let expiresIn: number | undefined;
  if (raw !== undefined) {
    if (typeof raw !== 'string' || !/^\d{1,9}$/.test(raw) || Number(raw) < 1) throw new CliError('--expires-in must be a whole number of seconds');
    expiresIn = Number(raw);
  }
  await withDatabase(config, async (knex) => {
    const provider = await providerFor(config, knex);
    const { REGISTRATION_POLICY } = await import('../oidc/provider.js');
    const token = new provider.InitialAccessToken({ ...(expiresIn ? { expiresIn } : {}), policies: [REGISTRATION_POLICY] });
    const value = await token.save();
    await createAuditLog(knex).record('iat.created', { actor: 'cli', details: { expires_in: expiresIn ?? null } });
    const endpoint = `${config.issuer}/reg`;
    if (v['json']) out(JSON.stringify({ initial_access_token: value, expires_in: expiresIn ?? null, registration_endpoint: endpoint }));
    else out(`initial access token: ${value}\nregistration endpoint: ${endpoint} (send it as "Authorization: Bearer …")`);
  });
}

async function keysCommand(config: Config, args: string[], out: Out): Promise<void> {
  const [sub, ...rest] = args;
  const v = options(rest, { json: { type: 'boolean' } });
  await withDatabase(config, async (knex) => {
    const keyStore = createKeyStore(knex);
    await keyStore.ensureKeys();
    if (sub === 'rotate') {
      const { added, retired } = await keyStore.rotate(RETIRED_KEY_RETENTION_MS);
      await createAuditLog(knex).record('keys.rotated', { actor: 'cli', details: { added, retired } });
      if (v['json']) out(JSON.stringify({ added, retired }));
      else out(`rotated: new signing keys ${added.join(', ')}; ${retired.length} previous key(s) stay published for ${RETIRED_KEY_RETENTION_MS / 1000}s`);
      return;
    }
    if (sub === 'list') {
      const keys = await keyStore.list();
      if (v['json']) out(JSON.stringify(keys));
      else for (const k of keys) out(`${k.kid}  ${k.alg}  ${k.status}  ${new Date(k.createdAt).toISOString()}`);
      return;
    }
    throw new CliError(`unknown keys command "${sub ?? ''}" (see: npm run cli -- help)`, 2);
  });
}

async function cleanup(config: Config, args: string[], out: Out): Promise<void> {
  const v = options(args, { json: { type: 'boolean' } });
  await withDatabase(config, async (knex) => {
    const result = await sweepAll(knex);
    out(
      v['json']
        ? JSON.stringify(result)
        : `deleted ${result.expired_rows_deleted} expired row(s), ${result.api_refresh_tokens_deleted} API refresh token(s), ${result.retired_keys_deleted} retired key(s) and ${result.email_tokens_deleted} email link token(s)`,
    );
  });
}

/** Runs one CLI command; returns the process exit code. */
export async function runCli(argv: string[], env: Readonly<Record<string, string | undefined>>, out: Out, err: Out): Promise<number> {
  const [command, ...args] = argv;
  try {
    if (!command || command === 'help' || command === '--help') {
      out(USAGE);
      return command ? 0 : 2;
    }
    const config = loadConfig(env);
    switch (command) {
      case 'migrate':
        await migrate(config, out);
        break;
      case 'createsuperuser':
        await createSuperuser(config, args, out);
        break;
      case 'client':
        await clientCommand(config, args, out);
        break;
      case 'resource':
        await resourceCommand(config, args, out);
        break;
      case 'iat':
        await iatCommand(config, args, out);
        break;
      case 'keys':
        await keysCommand(config, args, out);
        break;
      case 'cleanup':
        await cleanup(config, args, out);
        break;
      case 'import':
        return await importCommand(config, args, out);
      default:
        throw new CliError(`unknown command "${command}" (see: npm run cli -- help)`, 2);
    }
    return 0;
  } catch (error) {
    if (error instanceof CliError) {
      err(`error: ${error.message}`);
      return error.exitCode;
    }
    if (error instanceof ConfigError) {
      err(`config error: ${error.problems.join('; ')}`);
      return 1;
    }
    // The services' refusals: their English message on one line, exit 1.
    if (error instanceof DomainError) {
      err(`error: ${error.message}`);
      return 1;
    }
    err(`error: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

