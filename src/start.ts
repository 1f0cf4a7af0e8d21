import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLatchkey, type CreateOptions, type Latchkey } from './app.js';
import { loadConfig } from './config.js';

export interface RunningLatchkey {
  /** The public base URL, e.g. http://localhost:3000 */
  url: string;
  issuer: string;
  port: number;
  latchkey: Latchkey;
  server: http.Server;
  /** Stops accepting, waits up to `graceMs` for requests in flight, then closes everything. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Loads configuration from `env`, listens, and serves Latchkey. With PORT=0 and no
 * PUBLIC_URL the public URL follows the port the system chose (tests rely on this).
 */
export async function startLatchkey(
  env: Readonly<Record<string, string | undefined>>,
  { cwd = process.cwd(), ...options }: CreateOptions & { cwd?: string } = {},
): Promise<RunningLatchkey> {
  let config = loadConfig(env, cwd);
  const server = http.createServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
    res.end('{"error":"temporarily_unavailable","error_description":"Latchkey is starting"}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  if (!env['PUBLIC_URL'] && port !== config.port) config = loadConfig({ ...env, PORT: String(port) }, cwd);

  let latchkey: Latchkey;
  try {
    latchkey = await createLatchkey(config, options);
  } catch (error) {
    server.close();
    throw error;
  }
  server.removeAllListeners('request');
  server.on('request', latchkey.app.callback());

  return {
    url: config.publicUrl,
    issuer: config.issuer,
    port,
    latchkey,
    server,
    async close(graceMs = config.shutdownGraceSeconds * 1000) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(timer);
      await latchkey.close();
    },
  };
}
