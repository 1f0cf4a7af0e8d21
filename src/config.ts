import path from 'node:path';

/** Where Latchkey keeps its data: an embedded SQLite file or a PostgreSQL server. */
export type DatabaseConfig =
  | { readonly client: 'sqlite'; readonly filename: string }
  | { readonly client: 'pg'; readonly connectionString: string };

/** Typed, validated configuration, read once at start and passed down. */
export interface Config {
  readonly nodeEnv: string;
  readonly port: number;
  /** Public base URL without a trailing slash, e.g. `https://id.example.com`. */
  readonly publicUrl: string;
  /** `${publicUrl}/o`: the OpenID Provider's issuer identifier. */
  readonly issuer: string;
  readonly database: DatabaseConfig;
  readonly bcryptCost: number;
  /**
   * Niceness added to the password-hashing threads (Linux): a login's bcrypt work then yields
   * the CPU to request handling, so other requests stay fast while logins saturate the pool.
   */
  readonly passwordHashNice: number;
  /** Trust X-Forwarded-* headers (set when running behind a TLS-terminating proxy). */
  readonly trustProxy: boolean;
  /** Seconds between sweeps of expired OIDC rows; 0 disables the in-process sweeper. */
  readonly sweepIntervalSeconds: number;
  /** Seconds between checks for rotated signing keys made by another process. */
  readonly keyRefreshSeconds: number;
  /** Whether anonymous callers may register (POST /api/users/, /users/register/). */
  readonly allowRegistration: boolean;
  /**
   * Whether /api/token/refresh/ rotates refresh JWTs (single use, a replay ends the login) or,
   * as simplejwt's default, answers `{access}` and keeps the refresh JWT valid until it expires.
   */
  readonly apiRotateRefreshTokens: boolean;
  readonly logLevel: string;
  /**
   * Let the provider call clients on private, loopback and other special-use addresses
   * (back-channel logout, jwks_uri, sector identifiers). Off by default: SSRF protection.
   */
  readonly allowPrivateNetworkCalls: boolean;
  /** Every authorization request must come through PAR (RFC 9126), for every client. */
  readonly requirePar: boolean;
  /** When set, GET /metrics needs `Authorization: Bearer <token>`. */
  readonly metricsToken: string | undefined;
  /** How long SIGTERM waits for requests in flight before closing connections. */
  readonly shutdownGraceSeconds: number;
  /** Brute-force limits on every path that checks a password. */
  readonly throttle: {
    readonly accountMax: number;
    readonly ipMax: number;
    readonly windowSeconds: number;
    readonly lockoutSeconds: number;
  };
  /** Outgoing mail (email verification, password reset). */
  readonly mail: MailConfig;
}

/** SMTP when `smtpUrl` is set; otherwise each message is written as an .eml file to `outboxDir`. */
export interface MailConfig {
  /** `smtp://` (STARTTLS when offered) or `smtps://` (TLS from the start), credentials included. */
  readonly smtpUrl: string | undefined;
  /** The From header, e.g. `Latchkey <no-reply@id.example.com>`. */
  readonly from: string;
  /** Absolute path of the outbox folder, used when there is no SMTP server. */
  readonly outboxDir: string;
}

/** Thrown by {@link loadConfig}; `problems` holds one readable line per bad variable. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function integer(env: Env, name: string, fallback: number, min: number, max: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) {
    problems.push(`${name} must be a whole number, got "${raw}"`);
    return fallback;
  }
  const value = Number(raw.trim());
  if (value < min || value > max) {
    problems.push(`${name} must be between ${min} and ${max}, got ${value}`);
    return fallback;
  }
  return value;
}

function flag(env: Env, name: string, problems: string[], fallback = false): boolean {
  const raw = (env[name] ?? '').trim().toLowerCase();
  if (raw === '') return fallback;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  problems.push(`${name} must be true or false, got "${env[name]}"`);
  return false;
}

function parsePublicUrl(raw: string, problems: string[]): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    problems.push(`PUBLIC_URL must be an absolute http(s) URL, got "${raw}"`);
    return raw;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    problems.push(`PUBLIC_URL must use http or https, got "${url.protocol}"`);
  }
  if (url.search || url.hash || url.username || url.password) {
    problems.push('PUBLIC_URL must not contain a query, fragment or credentials');
  }
  return url.href.replace(/\/+$/, '');
}

/**
 * Reads `sqlite:<path>` (relative paths resolve against `cwd`) or `postgres://…`.
 * `sqlite::memory:` is accepted for throwaway databases.
 */
export function parseDatabaseUrl(raw: string, cwd: string, problems: string[]): DatabaseConfig {
  if (raw.startsWith('sqlite:')) {
    const file = raw.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (file === '') {
      problems.push('DATABASE_URL "sqlite:" needs a file path, e.g. sqlite:./data/latchkey.sqlite3');
      return { client: 'sqlite', filename: ':memory:' };
    }
    return { client: 'sqlite', filename: file === ':memory:' ? file : path.resolve(cwd, file) };
  }
  if (/^postgres(ql)?:\/\//.test(raw)) {
    try {
      new URL(raw);
    } catch {
      problems.push(`DATABASE_URL is not a valid PostgreSQL URL: "${raw}"`);
    }
    return { client: 'pg', connectionString: raw };
  }
  problems.push(`DATABASE_URL must start with sqlite: or postgres://, got "${raw}"`);
  return { client: 'sqlite', filename: ':memory:' };
}

/** Shows a URL without its password, for error messages that may end up in logs. */
function withoutPassword(url: URL): string {
  const shown = new URL(url.href);
  if (shown.password) shown.password = '***';
  return shown.href;
}

function parseSmtpUrl(raw: string | undefined, problems: string[]): string | undefined {
  const value = raw?.trim();
  if (!value) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Not echoed: an unparsable URL may still hold a password.
    problems.push('SMTP_URL must be an smtp:// or smtps:// URL such as smtp://user:pass@mail.example.com:587');
    return undefined;
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') {
    problems.push(`SMTP_URL must use smtp:// or smtps://, got "${withoutPassword(url)}"`);
  } else if (!url.hostname) {
    problems.push(`SMTP_URL needs a host, got "${withoutPassword(url)}"`);
  }
  return value;
}

/** `name@domain` or `Display Name <name@domain>`; no line breaks (they would inject headers). */
const MAIL_FROM = /^(?:[^\r\n<>@]*<[^\s<>@]+@[^\s<>@]+>|[^\s<>@]+@[^\s<>@]+)$/;

function mailFrom(raw: string | undefined, publicUrl: string, problems: string[]): string {
  const value = raw?.trim();
  if (value) {
    if (!MAIL_FROM.test(value)) problems.push(`MAIL_FROM must be an address or "Name <address>", got "${value}"`);
    return value;
  }
  let host = 'localhost';
  try {
    host = new URL(publicUrl).hostname || host;
  } catch {
    // PUBLIC_URL's own problem is already reported.
  }
  return `Latchkey <no-reply@${host}>`;
}

/**
 * Validates the environment and returns a frozen {@link Config}.
 * Every problem is collected so that one run shows all of them.
 */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): Config {
  const problems: string[] = [];
  const nodeEnv = env['NODE_ENV'] ?? 'development';
  const port = integer(env, 'PORT', 3000, 0, 65535, problems);
  const publicUrl = parsePublicUrl(env['PUBLIC_URL'] || `http://localhost:${port}`, problems);
  const database = parseDatabaseUrl(env['DATABASE_URL'] || 'sqlite:./data/latchkey.sqlite3', cwd, problems);
  const bcryptCost = integer(env, 'BCRYPT_COST', 10, 10, 20, problems);
  const passwordHashNice = integer(env, 'PASSWORD_HASH_NICE', 5, 0, 19, problems);
  const trustProxy = flag(env, 'TRUST_PROXY', problems);
  const sweepIntervalSeconds = integer(env, 'SWEEP_INTERVAL_SECONDS', 600, 0, 86400, problems);
  const keyRefreshSeconds = integer(env, 'KEY_REFRESH_SECONDS', 30, 1, 3600, problems);
  const allowRegistration = flag(env, 'ALLOW_REGISTRATION', problems, true);
  const apiRotateRefreshTokens = flag(env, 'API_ROTATE_REFRESH_TOKENS', problems, true);
  const throttle = Object.freeze({
    accountMax: integer(env, 'LOGIN_MAX_FAILURES_PER_ACCOUNT', 5, 1, 1000, problems),
    ipMax: integer(env, 'LOGIN_MAX_FAILURES_PER_IP', 50, 1, 100000, problems),
    windowSeconds: integer(env, 'LOGIN_FAILURE_WINDOW_SECONDS', 900, 1, 86400, problems),
    lockoutSeconds: integer(env, 'LOGIN_LOCKOUT_SECONDS', 900, 1, 86400, problems),
  });

  const logLevel = (env['LOG_LEVEL'] || 'info').trim().toLowerCase();
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "${env['LOG_LEVEL']}"`);
  }
  const allowPrivateNetworkCalls = flag(env, 'ALLOW_PRIVATE_NETWORK_CALLS', problems);
  const requirePar = flag(env, 'REQUIRE_PAR', problems);
  const metricsToken = env['METRICS_TOKEN']?.trim() || undefined;
  if (metricsToken !== undefined && metricsToken.length < 16) problems.push('METRICS_TOKEN must be at least 16 characters');
  const shutdownGraceSeconds = integer(env, 'SHUTDOWN_GRACE_SECONDS', 10, 0, 600, problems);
  const mail: MailConfig = Object.freeze({
    smtpUrl: parseSmtpUrl(env['SMTP_URL'], problems),
    from: mailFrom(env['MAIL_FROM'], publicUrl, problems),
    outboxDir: path.resolve(cwd, env['MAIL_OUTBOX_DIR']?.trim() || './data/outbox'),
  });

  if (nodeEnv === 'production') {
    // Development defaults are fine on a laptop and wrong in production: ask for them explicitly.
    if (!env['PUBLIC_URL']) problems.push('NODE_ENV=production needs PUBLIC_URL (the https URL clients use)');
    else if (!publicUrl.startsWith('https:')) problems.push('NODE_ENV=production needs an https PUBLIC_URL');
    if (!env['DATABASE_URL']) problems.push('NODE_ENV=production needs DATABASE_URL (no default database in production)');
  }
  if (publicUrl.startsWith('https:') && !trustProxy) {
    // Latchkey itself speaks plain HTTP: an https PUBLIC_URL means a TLS proxy in front, and
    // without trusting its X-Forwarded-Proto every Secure cookie would be refused.
    problems.push('PUBLIC_URL is https but TRUST_PROXY is off: run behind a TLS-terminating proxy and set TRUST_PROXY=1');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    nodeEnv,
    port,
    publicUrl,
    issuer: `${publicUrl}/o`,
    database: Object.freeze(database),
    bcryptCost,
    passwordHashNice,
    trustProxy,
    sweepIntervalSeconds,
    keyRefreshSeconds,
    allowRegistration,
    apiRotateRefreshTokens,
    logLevel,
    allowPrivateNetworkCalls,
    requirePar,
    metricsToken,
    shutdownGraceSeconds,
    throttle,
    mail,
  });
}
