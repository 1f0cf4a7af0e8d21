import { ConfigError } from './config.js';
import { loadDotEnv } from './load-env.js';
import { startLatchkey } from './start.js';

/** `npm start`: configuration from the environment (and .env), then serve until signalled. */
async function main(): Promise<void> {
  loadDotEnv();
  const running = await startLatchkey(process.env);
  const { logger } = running.latchkey.observability;
  // The one line a person starting Latchkey looks for; the JSON logs follow on stdout.
  console.log(`Latchkey ready: issuer ${running.issuer} (discovery ${running.issuer}/.well-known/openid-configuration)`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: no new connections, finishing requests in flight');
    running.close().then(
      () => {
        logger.info('stopped');
        logger.flush();
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    for (const problem of error.problems) console.error(`config error: ${problem}`);
  } else {
    console.error(`Latchkey failed to start: ${error instanceof Error ? error.message : String(error)}`);
  }
  process.exit(1);
});
