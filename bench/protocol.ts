/**
 * Messages between the orchestrator (bench/run.ts) and the load-generator processes
 * (bench/load.ts). Load is always generated in a separate process from both the orchestrator
 * and the server under test; the spec travels over the fork() IPC channel.
 */

/** A fixed request hammered by autocannon (closed loop: `connections` requests in flight). */
export interface HttpLoadSpec {
  kind: 'http';
  url: string;
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  /** A body not containing this string counts as an error (e.g. `"active":true`). */
  expectBodyIncludes: string;
}

/**
 * refresh_token grant with rotation: each connection sends the refresh token returned by its
 * previous response; the first request of each connection takes one from `pool`.
 */
export interface RefreshChainSpec {
  kind: 'refresh-chain';
  url: string;
  authorization: string;
  pool: string[];
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
}

/** Whole authorization-code + PKCE flows, each in a fresh cookie jar (a new browser). */
export interface FlowSpec {
  kind: 'flows';
  base: string;
  rp: RelyingParty;
  login: { username: string; password: string };
  concurrency: number;
  durationSeconds: number;
  warmupSeconds: number;
}

/**
 * Open-loop latency probe: GETs `url` at a fixed rate (not waiting for earlier answers, so a
 * slow server cannot hide its latency), starting after `delaySeconds`.
 */
export interface ProbeSpec {
  kind: 'probe';
  url: string;
  ratePerSecond: number;
  delaySeconds: number;
  durationSeconds: number;
  expectBodyIncludes: string;
}

export type LoadSpec = HttpLoadSpec | RefreshChainSpec | FlowSpec | ProbeSpec;

export interface RelyingParty {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  scope: string;
}

export interface LoadResult {
  /** Completed requests (or flows) per second over the measured window. */
  rps: number;
  /** Completed requests (or flows), successful or not. */
  total: number;
  /** Failed requests: non-2xx, unexpected bodies, socket errors, timeouts, failed flows. */
  errors: number;
  /** Latency in milliseconds (whole request, or whole flow). */
  p50: number;
  p99: number;
  mean: number;
  max: number;
  /** Seconds the measured window actually lasted. */
  seconds: number;
  /** A few error descriptions, for the report. */
  errorSamples: string[];
  /** CPU seconds the load generator itself used in the measured window (all its threads). */
  loadCpuSeconds: number;
  /** Filled in by the orchestrator: CPU seconds the server process used in the measured window. */
  serverCpuSeconds?: number;
}

/**
 * From a load generator: `phase` marks the start and end of the measured window (the
 * orchestrator samples the server's CPU time there), then exactly one result or error.
 */
export type LoadMessage =
  | { type: 'phase'; phase: 'start' | 'end' }
  | { type: 'result'; result: LoadResult }
  | { type: 'error'; error: string };

/** Basic client authentication header (RFC 6749 2.3.1: each part form-urlencoded first). */
export function basicAuth(clientId: string, clientSecret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(clientSecret)}`).toString('base64')}`;
}

/** Percentile of an ascending-sorted array (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? 0;
}
