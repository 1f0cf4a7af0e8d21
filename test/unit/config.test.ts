import path from 'node:path';
import { describe, it, expect } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

const CWD = path.resolve('/srv/latchkey');

/** Runs loadConfig expecting a ConfigError and returns its problems. */
function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env, CWD);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('uses defaults for an empty environment', () => {
    const config = loadConfig({}, CWD);
    expect(config).toEqual({
      nodeEnv: 'development',
      port: 3000,
      publicUrl: 'http://localhost:3000',
      issuer: 'http://localhost:3000/o',
      // The default relative sqlite path resolves against the cwd argument, not process.cwd().
      database: { client: 'sqlite', filename: path.join(CWD, 'data', 'latchkey.sqlite3') },
      bcryptCost: 10,
      passwordHashNice: 5,
      trustProxy: false,
      sweepIntervalSeconds: 600,
      keyRefreshSeconds: 30,
      allowRegistration: true,
      apiRotateRefreshTokens: true,
      logLevel: 'info',
      allowPrivateNetworkCalls: false,
      requirePar: false,
      metricsToken: undefined,
      shutdownGraceSeconds: 10,
      throttle: { accountMax: 5, ipMax: 50, windowSeconds: 900, lockoutSeconds: 900 },
      // No SMTP server: mails go to the outbox folder, and the sender is named after PUBLIC_URL.
      mail: { smtpUrl: undefined, from: 'Latchkey <no-reply@localhost>', outboxDir: path.join(CWD, 'data', 'outbox') },
    });
  });

  it('treats empty strings as unset', () => {
    const config = loadConfig({ PORT: '', PUBLIC_URL: '', DATABASE_URL: '', BCRYPT_COST: '', TRUST_PROXY: '' }, CWD);
    expect(config.port).toBe(3000);
    expect(config.publicUrl).toBe('http://localhost:3000');
    expect(config.bcryptCost).toBe(10);
    expect(config.trustProxy).toBe(false);
  });

  it('derives the default PUBLIC_URL from PORT', () => {
    const config = loadConfig({ PORT: '8080' }, CWD);
    expect(config.port).toBe(8080);
    expect(config.publicUrl).toBe('http://localhost:8080');
    expect(config.issuer).toBe('http://localhost:8080/o');
  });

  it('strips trailing slashes from PUBLIC_URL (issuer must not get "//o")', () => {
    expect(loadConfig({ PUBLIC_URL: 'https://id.example.com/', TRUST_PROXY: '1' }, CWD).publicUrl).toBe('https://id.example.com');
    const withPath = loadConfig({ PUBLIC_URL: 'https://example.com/auth//', TRUST_PROXY: '1' }, CWD);
    expect(withPath.publicUrl).toBe('https://example.com/auth');
    expect(withPath.issuer).toBe('https://example.com/auth/o');
  });

  it('selects PostgreSQL for postgres:// and postgresql:// URLs', () => {
    const url = 'postgres://latchkey:secret@db.internal:5432/latchkey';
    expect(loadConfig({ DATABASE_URL: url }, CWD).database).toEqual({ client: 'pg', connectionString: url });
    const url2 = 'postgresql://db.internal/latchkey';
    expect(loadConfig({ DATABASE_URL: url2 }, CWD).database).toEqual({ client: 'pg', connectionString: url2 });
  });

  it('resolves sqlite paths: relative against cwd, absolute as is, :memory: kept', () => {
    expect(loadConfig({ DATABASE_URL: 'sqlite:db/x.sqlite3' }, CWD).database).toEqual({
      client: 'sqlite',
      filename: path.join(CWD, 'db', 'x.sqlite3'),
    });
    expect(loadConfig({ DATABASE_URL: 'sqlite:/var/lib/l.sqlite3' }, CWD).database).toEqual({
      client: 'sqlite',
      filename: '/var/lib/l.sqlite3',
    });
    // sqlite:///abs is the URL-ish spelling of an absolute path.
    expect(loadConfig({ DATABASE_URL: 'sqlite:///var/lib/l.sqlite3' }, CWD).database).toEqual({
      client: 'sqlite',
      filename: '/var/lib/l.sqlite3',
    });
    expect(loadConfig({ DATABASE_URL: 'sqlite::memory:' }, CWD).database).toEqual({ client: 'sqlite', filename: ':memory:' });
  });

  it('reads TRUST_PROXY and numeric settings', () => {
    const config = loadConfig(
      {
        TRUST_PROXY: ' Yes ',
        BCRYPT_COST: '12',
        SWEEP_INTERVAL_SECONDS: '0',
        KEY_REFRESH_SECONDS: '5',
        NODE_ENV: 'production',
        PUBLIC_URL: 'https://id.example.com',
        DATABASE_URL: 'postgres://latchkey@db.internal/latchkey',
      },
      CWD,
    );
    expect(config.trustProxy).toBe(true);
    expect(config.bcryptCost).toBe(12);
    expect(config.sweepIntervalSeconds).toBe(0);
    expect(config.keyRefreshSeconds).toBe(5);
    expect(config.nodeEnv).toBe('production');
    expect(loadConfig({ TRUST_PROXY: 'off' }, CWD).trustProxy).toBe(false);
    // Rotation with reuse detection unless switched off knowingly.
    expect(loadConfig({}, CWD).apiRotateRefreshTokens).toBe(true);
    expect(loadConfig({ API_ROTATE_REFRESH_TOKENS: 'false' }, CWD).apiRotateRefreshTokens).toBe(false);
  });

  it('refuses development defaults in production, one line each', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig({ NODE_ENV: 'production', ...env }, CWD);
        return [];
      } catch (error) {
        return [...(error as ConfigError).problems];
      }
    };
    expect(problems({})).toEqual([
      expect.stringContaining('PUBLIC_URL'),
      expect.stringContaining('DATABASE_URL'),
    ]);
    expect(problems({ PUBLIC_URL: 'http://id.example.com', DATABASE_URL: 'sqlite:/var/lib/latchkey/db.sqlite3' })).toEqual([
      expect.stringMatching(/https PUBLIC_URL/),
    ]);
    expect(problems({ PUBLIC_URL: 'https://id.example.com', TRUST_PROXY: '1', DATABASE_URL: 'postgres://db/latchkey' })).toEqual([]);
    expect(problems({ PUBLIC_URL: 'https://id.example.com', TRUST_PROXY: '1', DATABASE_URL: 'postgres://db/latchkey', LOG_LEVEL: 'loud', METRICS_TOKEN: 'short' })).toEqual([
      expect.stringContaining('LOG_LEVEL'),
      expect.stringContaining('METRICS_TOKEN'),
    ]);
  });

  // Each bad variable yields exactly one problem line, and that line names the variable so an
  // operator knows what to fix.
  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PUBLIC_URL', 'ftp://x'],
    ['PUBLIC_URL', 'not a url'],
    ['PUBLIC_URL', 'http://user:pw@id.example.com'],
    // Latchkey speaks plain HTTP, so https means a TLS proxy whose X-Forwarded-Proto must be
    // trusted, or Secure cookies are refused.
    ['PUBLIC_URL', 'https://id.example.com'],
    ['DATABASE_URL', 'mysql://x'],
    ['DATABASE_URL', 'sqlite:'],
    ['BCRYPT_COST', '9'],
    ['BCRYPT_COST', '21'],
    ['TRUST_PROXY', 'maybe'],
    ['API_ROTATE_REFRESH_TOKENS', 'sometimes'],
    ['KEY_REFRESH_SECONDS', '0'],
    ['SMTP_URL', 'http://mail.example.com'],
    ['SMTP_URL', 'not a url'],
    ['MAIL_FROM', 'not an address'],
    ['MAIL_FROM', 'Latchkey <a@example.com>\r\nBcc: victim@example.com'],
  ])('rejects %s=%j with one problem naming it', (name, value) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(name);
  });

  it('accepts an https PUBLIC_URL behind a trusted proxy and names both variables otherwise', () => {
    const config = loadConfig({ PUBLIC_URL: 'https://id.example.com', TRUST_PROXY: 'true' }, CWD);
    expect(config).toMatchObject({ publicUrl: 'https://id.example.com', issuer: 'https://id.example.com/o', trustProxy: true });
    const problems = problemsOf({ PUBLIC_URL: 'https://id.example.com', TRUST_PROXY: 'no' });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('TRUST_PROXY');
  });

  it('reports every bad variable at once', () => {
    const problems = problemsOf({ PORT: 'abc', DATABASE_URL: 'mysql://x', BCRYPT_COST: '9', TRUST_PROXY: 'maybe' });
    expect(problems).toHaveLength(4);
    for (const [i, name] of ['PORT', 'DATABASE_URL', 'BCRYPT_COST', 'TRUST_PROXY'].entries()) {
      expect(problems[i]).toContain(name);
    }
    // The error message carries all of them too (it is what a crashing process prints).
    let message = '';
    try {
      loadConfig({ PORT: 'abc', TRUST_PROXY: 'maybe' }, CWD);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message.split('\n')).toHaveLength(2);
  });

  it('reads the mail settings, derives the sender from PUBLIC_URL and never echoes an SMTP password', () => {
    const config = loadConfig(
      { PUBLIC_URL: 'https://id.example.com', TRUST_PROXY: '1', SMTP_URL: 'smtps://u:secret@mail.example.com:465', MAIL_OUTBOX_DIR: 'mail' },
      CWD,
    );
    expect(config.mail).toEqual({
      smtpUrl: 'smtps://u:secret@mail.example.com:465',
      from: 'Latchkey <no-reply@id.example.com>',
      outboxDir: path.join(CWD, 'mail'),
    });
    expect(Object.isFrozen(config.mail)).toBe(true);
    expect(loadConfig({ MAIL_FROM: 'Accounts <accounts@example.com>' }, CWD).mail.from).toBe('Accounts <accounts@example.com>');
    expect(loadConfig({ MAIL_FROM: 'accounts@example.com' }, CWD).mail.from).toBe('accounts@example.com');
    for (const bad of ['imap://u:secret@mail.example.com', 'smtp://u:secret@[bad']) {
      const problems = problemsOf({ SMTP_URL: bad });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain('SMTP_URL');
      expect(problems[0]).not.toContain('secret');
    }
  });

  it('returns a frozen object, database included', () => {
    const config = loadConfig({}, CWD);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.database)).toBe(true);
    // ESM modules are strict mode: writing a frozen property throws instead of being ignored.
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(config.port).toBe(3000);
  });
});
