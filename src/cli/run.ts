import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createCommandServices, type CommandServices } from '../composition.js';
import { rotateSigningKeys } from '../core/keys/key-rotation.js';
import { ConfigError, loadConfig, type Config } from '../config.js';
import type { AuditActor } from '../core/audit/audit-log.js';
import { DomainError, InvalidInput } from '../core/errors.js';
import { resourceJson } from '../core/resources/resource-service.js';
import { RETIRED_KEY_RETENTION_MS } from '../core/tokens/lifetimes.js';
import { createLogger } from '../observability/logger.js';
import { TOKEN_ENDPOINT_AUTH_METHODS, type JwkSet, type NewClient, type TokenEndpointAuthMethod } from '../storage/clients.js';
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

/** Who the audit log names for everything the CLI does. */
const CLI: AuditActor = { label: 'cli' };

/**
 * The CLI's logs: none. A command says what happened in its one line (stdout) or its one
 * error line (stderr); the services' refusals and failures reach it as errors.
 */
const SILENT = createLogger({ level: 'silent', pretty: false });

/** Runs `fn` on the services (the server's, from the same composition root), closed after it. */
async function withServices<T>(config: Config, fn: (root: CommandServices) => Promise<T>): Promise<T> {
  const root = await createCommandServices(config, { logger: SILENT });
  try {
    return await fn(root);
  } finally {
    await root.close();
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
  await withServices(config, async ({ migrationsApplied: applied }) => {
    out(applied.length ? `applied ${applied.length} migration(s): ${applied.join(', ')}` : 'database is up to date');
  });
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
  await withServices(config, async ({ services }) => {
    try {
      const user = await services.userService.createSuperuser(CLI, { username, email, password });
      out(`superuser "${user.username}" created with id ${user.id}`);
    } catch (error) {
      if (error instanceof InvalidInput) throw new CliError(validationLine(error, USER_FLAGS));
      throw error;
    }
  });
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
      'resource-server-for': { type: 'string', multiple: true },
      public: { type: 'boolean' },
      'dpop-bound': { type: 'boolean' },
      json: { type: 'boolean' },
      ...KEY_OPTIONS,
    });
    if (typeof v['name'] !== 'string' || !v['name'].trim()) throw new CliError('--name is required');
    const keyInput = await keyOptionsInput(v);
    await withServices(config, async (root) => {
      // The provider validates the metadata: built first, so the service finds it.
      await root.provider();
      const { client, clientSecret } = await root.services.clientService.register(
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
          resourceServerFor: strings(v['resource-server-for']),
          ...keyInput,
        },
        CLI,
      );
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
    await withServices(config, async ({ services }) => {
      const list = await services.clientService.list();
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

/** The CLI flag each resource field comes from, to name it in an error. */
const RESOURCE_FLAGS: Record<string, string> = {
  identifier: '--identifier',
  name: '--name',
  scopes: '--scope',
  access_token_ttl: '--ttl',
  access_token_format: '--format',
};

/** The CLI flag each user field comes from. */
const USER_FLAGS: Record<string, string> = { username: '--username', email: '--email', password: '--password' };

/** One line for the service's per-field problems, in English, under the options' names. */
function validationLine(error: InvalidInput, flags: Record<string, string>): string {
  return Object.entries(error.fields)
    .map(([field, problems]) => `${flags[field] ?? field}: ${problems.map((p) => p.message).join(' ')}`)
    .join('; ');
}

async function resourceCommand(config: Config, args: string[], out: Out): Promise<void> {
  const [sub, ...rest] = args;
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
      await withServices(config, async ({ services }) => {
        const resource = await services.resourceService.create(
          {
            identifier: v['identifier'] as string,
            ...(typeof v['name'] === 'string' ? { name: v['name'] } : {}),
            // Each --scope may also hold several, space-separated.
            scopes: strings(v['scope']).flatMap((s) => s.split(/\s+/)).filter(Boolean),
            ...(typeof ttl === 'string' ? { accessTokenTtl: Number(ttl) } : {}),
            ...(typeof v['format'] === 'string' ? { accessTokenFormat: v['format'] } : {}),
          },
          CLI,
        );
        if (v['json']) out(JSON.stringify(resourceJson(resource)));
        else out(`resource ${resource.identifier} created (id ${resource.id}; scopes: ${resource.scopes.join(' ') || 'none'}; ${resource.accessTokenFormat} tokens for ${resource.accessTokenTtl}s)`);
      });
      return;
    }
    if (sub === 'list') {
      const v = options(rest, { json: { type: 'boolean' } });
      await withServices(config, async ({ services }) => {
        const list = await services.resourceService.list();
        if (v['json']) out(JSON.stringify(list.map(resourceJson)));
        else for (const r of list) out(`${r.id}  ${r.identifier}  ${r.accessTokenFormat}  ${r.accessTokenTtl}s  ${r.scopes.join(' ') || '-'}${r.builtIn ? '  (built-in)' : ''}`);
      });
      return;
    }
    if (sub === 'delete') {
      const v = options(rest, { identifier: { type: 'string' } });
      if (typeof v['identifier'] !== 'string' || !v['identifier']) throw new CliError('--identifier is required');
      await withServices(config, async ({ services }) => {
        const removed = await services.resourceService.removeByIdentifier(v['identifier'] as string, CLI);
        out(`resource ${removed.identifier} deleted`);
      });
      return;
    }
  } catch (error) {
    if (error instanceof InvalidInput) throw new CliError(validationLine(error, RESOURCE_FLAGS));
    throw error;
  }
  throw new CliError(`unknown resource command "${sub ?? ''}" (see: npm run cli -- help)`, 2);
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
  await withServices(config, async (root) => {
    const value = await root.issueInitialAccessToken(expiresIn, CLI);
    const endpoint = `${config.issuer}/reg`;
    if (v['json']) out(JSON.stringify({ initial_access_token: value, expires_in: expiresIn ?? null, registration_endpoint: endpoint }));
    else out(`initial access token: ${value}\nregistration endpoint: ${endpoint} (send it as "Authorization: Bearer …")`);
  });
}

async function keysCommand(config: Config, args: string[], out: Out): Promise<void> {
  const [sub, ...rest] = args;
  const v = options(rest, { json: { type: 'boolean' } });
  await withServices(config, async ({ services: { keyStore, audit } }) => {
    await keyStore.ensureKeys();
    if (sub === 'rotate') {
      const { added, retired } = await rotateSigningKeys(keyStore, audit, CLI);
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
  await withServices(config, async ({ services }) => {
    const result = await services.sweeper.sweepReport();
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

