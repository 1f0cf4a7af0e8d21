import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * JSON lines on stdout (one per request plus events), pretty-printed when stdout is a
 * terminal. Nothing here ever logs a body, a query string, a cookie or an Authorization
 * header: paths only, so codes and tokens in URLs stay out too.
 */
export function createLogger({ level, pretty = Boolean(process.stdout.isTTY) }: { level: string; pretty?: boolean }): Logger {
  return pino({
    level,
    base: { service: 'latchkey' },
    redact: { paths: ['*.password', '*.client_secret', '*.token', '*.authorization', '*.cookie'], censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
  });
}
