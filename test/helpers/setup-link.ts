import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

/**
 * A logger that keeps the setup links the servers print at start (the `setup_url` of the
 * "No administrator yet" line), as an operator reads them from the log.
 */
export function setupLinkLog(): { logger: Logger; linkFor(serverUrl: string): string; all(serverUrl: string): string[] } {
  const links: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (typeof entry['setup_url'] === 'string') links.push(entry['setup_url']);
      }
      done();
    },
  });
  const all = (serverUrl: string) => links.filter((link) => link.startsWith(`${serverUrl}/setup?token=`));
  return {
    logger: pino({ level: 'warn' }, sink),
    all,
    linkFor(serverUrl) {
      const found = all(serverUrl).at(-1);
      if (!found) throw new Error(`no setup link was logged for ${serverUrl}`);
      return found;
    },
  };
}
