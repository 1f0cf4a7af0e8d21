/**
 * A load-generator process, forked by bench/run.ts: receives one LoadSpec over IPC, runs it
 * against a server in another process (autocannon for fixed requests and refresh chains, a
 * small concurrent loop for whole flows, an open-loop prober for latency), sends one
 * LoadResult back and exits. It exits on its own when the orchestrator goes away.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { authorizationCodeFlow, request } from './flow.js';
import {
  percentile,
  type FlowSpec,
  type HttpLoadSpec,
  type LoadMessage,
  type LoadResult,
  type LoadSpec,
  type ProbeSpec,
  type RefreshChainSpec,
} from './protocol.js';

/** Marks the measured window for the orchestrator and measures this process's own CPU in it. */
async function measured<T>(fn: () => Promise<T>): Promise<{ value: T; loadCpuSeconds: number }> {
  await new Promise<void>((resolve) => process.send!({ type: 'phase', phase: 'start' } satisfies LoadMessage, () => resolve()));
  const before = process.cpuUsage();
  const value = await fn();
  const used = process.cpuUsage(before);
  process.send!({ type: 'phase', phase: 'end' } satisfies LoadMessage);
  return { value, loadCpuSeconds: (used.user + used.system) / 1e6 };
}

function checkLoopback(url: string): void {
  if (new URL(url).hostname !== '127.0.0.1') throw new Error(`refusing to load anything but 127.0.0.1: ${url}`);
}

function errorSamplesOf(result: autocannon.Result, extra: string[]): string[] {
  const samples = [...extra];
  if (result.non2xx) samples.push(`${result.non2xx} non-2xx responses`);
  if (result.mismatches) samples.push(`${result.mismatches} unexpected response bodies`);
  if (result.timeouts) samples.push(`${result.timeouts} timeouts`);
  if (result.errors - result.timeouts > 0) samples.push(`${result.errors - result.timeouts} socket errors`);
  return samples.slice(0, 8);
}

/**
 * autocannon's own histogram keeps whole milliseconds; latencies are taken from its
 * per-response events instead (floating-point milliseconds from process.hrtime).
 */
function fromAutocannon(result: autocannon.Result, latencies: number[], samples: string[], loadCpuSeconds: number): LoadResult {
  const total = result.requests.total;
  const errors = result.non2xx + result.mismatches + result.errors;
  const sorted = latencies.sort((a, b) => a - b);
  return {
    rps: total / result.duration,
    total,
    errors,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : 0,
    max: sorted[sorted.length - 1] ?? 0,
    seconds: result.duration,
    errorSamples: errorSamplesOf(result, samples),
    loadCpuSeconds,
  };
}

/** Runs autocannon, collecting every response's latency. */
function cannon(options: autocannon.Options, latencies?: number[]): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(options, (error: Error | null, result: autocannon.Result) => (error ? reject(error) : resolve(result)));
    if (latencies) {
      instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => {
        latencies.push(responseTime);
      });
    }
  });
}

/** Keeps the first few distinct bodies of failed responses (for the report). */
function sampler() {
  const samples: string[] = [];
  return {
    samples,
    add(text: string) {
      if (samples.length < 3 && !samples.includes(text)) samples.push(text);
    },
  };
}

async function runHttp(spec: HttpLoadSpec): Promise<LoadResult> {
  checkLoopback(spec.url);
  const bad = sampler();
  const options: autocannon.Options = {
    url: spec.url,
    method: spec.method,
    connections: spec.connections,
    pipelining: 1,
    timeout: 10,
    headers: spec.headers ?? {},
    ...(spec.body !== undefined ? { body: spec.body } : {}),
    verifyBody: (body: unknown) => {
      const ok = typeof body === 'string' && body.includes(spec.expectBodyIncludes);
      if (!ok) bad.add(`unexpected body: ${String(body).slice(0, 160)}`);
      return ok;
    },
  };
  if (spec.warmupSeconds > 0) await cannon({ ...options, duration: spec.warmupSeconds });
  bad.samples.length = 0;
  const latencies: number[] = [];
  const { value: result, loadCpuSeconds } = await measured(() => cannon({ ...options, duration: spec.durationSeconds }, latencies));
  return fromAutocannon(result, latencies, bad.samples, loadCpuSeconds);
}

/**
 * Each connection sends the refresh token its previous response returned. autocannon resets
 * the per-connection context between requests, but it calls onResponse and then setupRequest
 * of the same connection synchronously, one after the other; so the new token is handed over
 * through `handoff`. A connection's first request (and one after a failure) takes a token
 * from the pre-minted pool.
 */
async function runRefreshChain(spec: RefreshChainSpec): Promise<LoadResult> {
  checkLoopback(spec.url);
  const pool = [...spec.pool];
  const bad = sampler();
  let handoff: string | undefined;
  const once = async (durationSeconds: number, latencies?: number[]) => {
    handoff = undefined;
    return cannon({
      url: spec.url,
      connections: spec.connections,
      pipelining: 1,
      timeout: 10,
      duration: durationSeconds,
      requests: [
        {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: spec.authorization },
          setupRequest: (req: autocannon.Request) => {
            const token = handoff ?? pool.shift() ?? 'pool-exhausted';
            handoff = undefined;
            return { ...req, body: `grant_type=refresh_token&refresh_token=${encodeURIComponent(token)}` };
          },
          onResponse: (status: number, body: string) => {
            handoff = undefined;
            if (status !== 200) {
              bad.add(`HTTP ${status}: ${body.slice(0, 160)}`);
              return;
            }
            try {
              const next = (JSON.parse(body) as { refresh_token?: unknown }).refresh_token;
              if (typeof next === 'string') handoff = next;
              else bad.add('200 without a refresh_token');
            } catch {
              bad.add(`unparsable body: ${body.slice(0, 160)}`);
            }
          },
        },
      ],
      verifyBody: (body: unknown) => typeof body === 'string' && body.includes('"refresh_token"'),
    }, latencies);
  };
  if (spec.warmupSeconds > 0) await once(spec.warmupSeconds);
  bad.samples.length = 0;
  const latencies: number[] = [];
  const { value: result, loadCpuSeconds } = await measured(() => once(spec.durationSeconds, latencies));
  return fromAutocannon(result, latencies, bad.samples, loadCpuSeconds);
}

function summarise(latencies: number[], ok: number, failed: number, seconds: number, samples: string[], loadCpuSeconds = 0): LoadResult {
  const sorted = latencies.sort((a, b) => a - b);
  const total = ok + failed;
  return {
    rps: seconds > 0 ? total / seconds : 0,
    total,
    errors: failed,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : 0,
    max: sorted[sorted.length - 1] ?? 0,
    seconds,
    errorSamples: samples,
    loadCpuSeconds,
  };
}

async function runFlows(spec: FlowSpec): Promise<LoadResult> {
  checkLoopback(spec.base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.concurrency * 2 });
  const loop = async (seconds: number) => {
    const latencies: number[] = [];
    const bad = sampler();
    let ok = 0;
    let failed = 0;
    const started = performance.now();
    const deadline = started + seconds * 1000;
    await Promise.all(
      Array.from({ length: spec.concurrency }, async () => {
        while (performance.now() < deadline) {
          const t0 = performance.now();
          try {
            await authorizationCodeFlow(agent, spec.base, spec.rp, spec.login);
            latencies.push(performance.now() - t0);
            ok++;
          } catch (error) {
            failed++;
            bad.add((error as Error).message.slice(0, 200));
          }
        }
      }),
    );
    // Flows started before the deadline are counted, so the window ends with the last one.
    return summarise(latencies, ok, failed, (performance.now() - started) / 1000, bad.samples);
  };
  try {
    if (spec.warmupSeconds > 0) await loop(spec.warmupSeconds);
    const { value, loadCpuSeconds } = await measured(() => loop(spec.durationSeconds));
    return { ...value, loadCpuSeconds };
  } finally {
    agent.destroy();
  }
}

async function runProbe(spec: ProbeSpec): Promise<LoadResult> {
  checkLoopback(spec.url);
  const url = new URL(spec.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  if (spec.delaySeconds > 0) await sleep(spec.delaySeconds * 1000);
  const latencies: number[] = [];
  const bad = sampler();
  let ok = 0;
  let failed = 0;
  const interval = 1000 / spec.ratePerSecond;
  const count = Math.max(1, Math.round(spec.durationSeconds * spec.ratePerSecond));
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const inFlight: Array<Promise<void>> = [];
  try {
    for (let i = 0; i < count; i++) {
      const due = started + i * interval;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      const t0 = performance.now();
      inFlight.push(
        request(agent, url).then(
          (response) => {
            if (response.status === 200 && response.body.includes(spec.expectBodyIncludes)) {
              latencies.push(performance.now() - t0);
              ok++;
            } else {
              failed++;
              bad.add(`HTTP ${response.status}: ${response.body.slice(0, 160)}`);
            }
          },
          (error: Error) => {
            failed++;
            bad.add(error.message);
          },
        ),
      );
    }
    await Promise.all(inFlight);
    const cpu = process.cpuUsage(cpuBefore);
    return summarise(latencies, ok, failed, (performance.now() - started) / 1000, bad.samples, (cpu.user + cpu.system) / 1e6);
  } finally {
    agent.destroy();
  }
}

function run(spec: LoadSpec): Promise<LoadResult> {
  switch (spec.kind) {
    case 'http':
      return runHttp(spec);
    case 'refresh-chain':
      return runRefreshChain(spec);
    case 'flows':
      return runFlows(spec);
    case 'probe':
      return runProbe(spec);
  }
}

if (!process.send) {
  console.error('bench/load.js is started by bench/run.js (it needs an IPC channel)');
  process.exit(2);
}
// The orchestrator gone (crash, kill): stop at once rather than load a server nobody reads.
process.on('disconnect', () => process.exit(3));
process.once('message', (spec: LoadSpec) => {
  run(spec).then(
    (result) => process.send!({ type: 'result', result } satisfies LoadMessage, () => process.exit(0)),
    (error: unknown) =>
      process.send!({ type: 'error', error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies LoadMessage, () =>
        process.exit(1),
      ),
  );
});
