/**
 * `npm run bench` (full) and `npm run bench -- --quick` (smoke): starts the ceiling and
 * Latchkey (SQLite, PostgreSQL) as child processes on 127.0.0.1, runs every workload against
 * every system, alternating systems within each workload and rotating the order per round,
 * with load from separate processes (bench/load.ts); writes bench/results/<date>.json and
 * bench/results/latest.md (quick runs: bench/results/quick-latest.*), prints the table, and
 * exits non-zero when any workload saw an error.
 *
 * Options: --quick, --rounds N, --duration SECONDS, --growth-rows N, --only W1,W2,
 * --candidate [LABEL=]DIR (repeatable: also run the Latchkey build in DIR, to measure a change),
 * --profile WORKLOAD
 * (instead of benchmarking: run one workload against servers under `node --cpu-prof` and
 * summarise where their main threads spend time).
 */
import { execFileSync, fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { mintTokens } from './flow.js';
import { summariseProfile } from './profile-summary.js';
import { prefillPayloads } from './prefill.js';
import { basicAuth, type LoadMessage, type LoadResult, type LoadSpec } from './protocol.js';
import { markdown, summarise, targetsFor, WORKLOAD_LABELS, median, WORKLOAD_ORDER, type MachineInfo, type Measurement, type WorkloadId } from './report.js';
import {
  cleanup,
  freshDatabase,
  killChildren,
  LOGIN,
  migrate,
  NOHASH_LOGIN,
  openKnex,
  PG_ADMIN_URL,
  postgresProblem,
  ROOT,
  startCeiling,
  startLatchkey,
  track,
  type RunningSystem,
} from './systems.js';

const DISCOVERY = '/o/.well-known/openid-configuration';
const LOAD_JS = path.join(ROOT, 'dist/bench/load.js');
const BCRYPT_JS = path.join(ROOT, 'dist/bench/bcrypt-rate.js');

interface Settings {
  quick: boolean;
  rounds: number;
  durationSeconds: number;
  warmupSeconds: number;
  connections: number;
  flowConcurrency: number;
  loginConnections: number;
  probeRate: number;
  growthRows: number;
  bcryptSeconds: number;
  /** --profile WORKLOAD: profile the servers under one workload instead of benchmarking. */
  profile?: Runnable;
  /** --only W1,W2: run just these workloads (development; targets of the others show SKIP). */
  only?: Runnable[];
  /** --candidate [LABEL=]DIR (repeatable): also run the Latchkey build in DIR (its dist/) as `latchkey-<db> [LABEL]`. */
  candidates: Array<{ label: string; root: string }>;
}

/** What `--profile` takes: every workload that runs on its own (growth needs its prefilled table). */
const PROFILABLE = WORKLOAD_ORDER.filter((w): w is Runnable => w !== 'discovery_under_logins' && w !== 'growth_client_credentials');

function settingsFrom(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      'growth-rows': { type: 'string' },
      profile: { type: 'string' },
      only: { type: 'string' },
      candidate: { type: 'string', multiple: true },
    },
    strict: true,
  });
  const quick = values.quick === true;
  const profile = values.profile as Runnable | undefined;
  if (profile !== undefined && !PROFILABLE.includes(profile)) throw new Error(`--profile takes one of ${PROFILABLE.join(', ')}`);
  const all = WORKLOAD_ORDER.filter((w): w is Runnable => w !== 'discovery_under_logins');
  const only = values.only?.split(',').map((w) => w.trim()) as Runnable[] | undefined;
  const unknown = only?.filter((w) => !all.includes(w)) ?? [];
  if (unknown.length) throw new Error(`--only takes workloads among ${all.join(', ')}; unknown: ${unknown.join(', ')}`);
  const int = (raw: string | undefined, fallback: number, name: string) => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
    return n;
  };
  return {
    quick,
    rounds: int(values.rounds, quick ? 1 : 2, 'rounds'),
    durationSeconds: int(values.duration, quick ? 2 : 10, 'duration'),
    warmupSeconds: quick ? 0 : 1,
    connections: quick ? 4 : 16,
    flowConcurrency: quick ? 2 : 8,
    loginConnections: quick ? 4 : 8,
    probeRate: quick ? 50 : 100,
    growthRows: int(values['growth-rows'], quick ? 20_000 : 1_000_000, 'growth-rows'),
    bcryptSeconds: quick ? 1 : 3,
    ...(profile ? { profile } : {}),
    ...(only ? { only } : {}),
    candidates: (values.candidate ?? []).map((raw) => {
      const eq = raw.indexOf('=');
      const root = path.resolve(eq > 0 ? raw.slice(eq + 1) : raw);
      return { label: eq > 0 ? raw.slice(0, eq) : path.basename(root), root };
    }),
  };
}

const log = (line: string) => console.log(`· ${line}`);

let clockTicks: number | undefined;
/** CPU seconds (user + system, all threads) a process has used so far; undefined off Linux. */
function processCpuSeconds(pid: number): number | undefined {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return undefined;
  }
}

/**
 * Runs one LoadSpec in a new load-generator process. With `serverPid`, the server's CPU time
 * over the measured window (between the generator's phase marks) is added to the result.
 */
function runLoad(spec: LoadSpec, serverPid?: number): Promise<LoadResult> {
  const budgetMs =
    ((('durationSeconds' in spec ? spec.durationSeconds : 0) + ('warmupSeconds' in spec ? spec.warmupSeconds : 0) + ('delaySeconds' in spec ? spec.delaySeconds : 0)) * 1000) + 60_000;
  return new Promise((resolve, reject) => {
    const child = track(fork(LOAD_JS, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    let settled = false;
    let cpuAtStart: number | undefined;
    let serverCpuSeconds: number | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(() => reject(new Error(`load generator (${spec.kind}) did not finish in ${budgetMs / 1000} s`)));
    }, budgetMs);
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    child.on('message', (message: LoadMessage) => {
      if (message.type === 'phase') {
        if (serverPid === undefined) return;
        if (message.phase === 'start') cpuAtStart = processCpuSeconds(serverPid);
        else {
          const now = processCpuSeconds(serverPid);
          if (now !== undefined && cpuAtStart !== undefined) serverCpuSeconds = now - cpuAtStart;
        }
      } else if (message.type === 'result') {
        finish(() => resolve(serverCpuSeconds === undefined ? message.result : { ...message.result, serverCpuSeconds }));
      } else {
        finish(() => reject(new Error(`load generator failed: ${message.error}`)));
      }
    });
    child.once('exit', (code, signal) => finish(() => reject(new Error(`load generator exited (${code ?? signal}) without a result`))));
    child.once('error', (error) => finish(() => reject(error)));
    child.send(spec);
  });
}

/** bcryptjs hashes/s on one thread, in its own process while the servers are idle. */
function bcryptRate(seconds: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = track(fork(BCRYPT_JS, [], { env: { ...process.env, BCRYPT_COST: '10', SECONDS_TO_RUN: String(seconds) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    child.once('message', (m: { hashesPerSecond: number }) => resolve(m.hashesPerSecond));
    child.once('exit', (code) => reject(new Error(`bcrypt-rate exited (${code}) without a result`)));
  });
}

function rotate<T>(list: T[], by: number): T[] {
  if (list.length === 0) return list;
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

function gitCommit(): string | undefined {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'migrations'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${commit} (src modified)` : commit;
  } catch {
    return undefined;
  }
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function postgresVersion(): Promise<string | undefined> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ server_version: string }>('show server_version');
    return `PostgreSQL ${rows[0]?.server_version ?? '?'}`;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Quick sanity check that a GET answers 200 (before loading a system). */
async function get200(url: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    http
      .get(url, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${url} answered ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

type Runnable = Exclude<WorkloadId, 'discovery_under_logins'>;
type Runner = (system: RunningSystem, round: number, warmup: number) => Promise<Array<[WorkloadId, LoadResult]>>;

/** How each workload is driven (load always from a separate process). */
function makeRunners(settings: Settings): Record<Runnable, Runner> {
  const D = settings.durationSeconds;
  const load = (system: RunningSystem, spec: LoadSpec) => runLoad(spec, system.pid);
  const httpSpec = (system: RunningSystem, warmup: number, spec: { path: string; method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string; expect: string }): LoadSpec => ({
    kind: 'http',
    url: `${system.base}${spec.path}`,
    method: spec.method ?? 'GET',
    ...(spec.headers ? { headers: spec.headers } : {}),
    ...(spec.body !== undefined ? { body: spec.body } : {}),
    connections: settings.connections,
    durationSeconds: D,
    warmupSeconds: warmup,
    expectBodyIncludes: spec.expect,
  });
  const form = (system: RunningSystem) => ({ 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth(system.rp.clientId, system.rp.clientSecret) });
  const clientCredentials: Runner = async (s, _r, warmup) => [
    ['client_credentials', await load(s, httpSpec(s, warmup, { path: '/o/token', method: 'POST', headers: form(s), body: 'grant_type=client_credentials', expect: '"access_token"' }))],
  ];
  const probe = (s: RunningSystem, delaySeconds: number): LoadSpec => ({
    kind: 'probe',
    url: `${s.base}${DISCOVERY}`,
    ratePerSecond: settings.probeRate,
    delaySeconds,
    durationSeconds: D,
    expectBodyIncludes: '"issuer"',
  });
  return {
    discovery: async (s, _r, warmup) => [['discovery', await load(s, httpSpec(s, warmup, { path: DISCOVERY, expect: '"issuer"' }))]],
    jwks: async (s, _r, warmup) => [['jwks', await load(s, httpSpec(s, warmup, { path: '/o/jwks', expect: '"keys"' }))]],
    client_credentials: clientCredentials,
    introspection: async (s, _r, warmup) => {
      // A fresh user access token from a real flow (the ceiling's in-memory store is an LRU).
      const [tokens] = await mintTokens(s.base, s.rp, LOGIN, 1, 1);
      const body = `token=${encodeURIComponent(tokens!.access_token)}&token_type_hint=access_token`;
      return [['introspection', await load(s, httpSpec(s, warmup, { path: '/o/token/introspection', method: 'POST', headers: form(s), body, expect: '"active":true' }))]];
    },
    userinfo: async (s, _r, warmup) => {
      const [tokens] = await mintTokens(s.base, s.rp, LOGIN, 1, 1);
      return [['userinfo', await load(s, httpSpec(s, warmup, { path: '/o/me', headers: { authorization: `Bearer ${tokens!.access_token}` }, expect: '"sub"' }))]];
    },
    refresh_token: async (s, _r, warmup) => {
      // One refresh token per connection, each from its own whole flow (its own grant); every
      // response's new token feeds that connection's next request. Tokens are minted right
      // before each phase: the ceiling's in-memory store is an LRU of 1,000 entries, which a
      // warm-up rotating thousands of tokens would otherwise empty of the unused ones.
      const chain = async (durationSeconds: number) => {
        const pool = (await mintTokens(s.base, s.rp, LOGIN, settings.connections + 4, 4)).map((t) => t.refresh_token);
        return load(s, {
          kind: 'refresh-chain',
          url: `${s.base}/o/token`,
          authorization: basicAuth(s.rp.clientId, s.rp.clientSecret),
          pool,
          connections: settings.connections,
          durationSeconds,
          warmupSeconds: 0,
        });
      };
      if (warmup > 0) await chain(warmup);
      return [['refresh_token', await chain(D)]];
    },
    authcode_flows: async (s, _r, warmup) => [
      ['authcode_flows', await load(s, { kind: 'flows', base: s.base, rp: s.rp, login: LOGIN, concurrency: settings.flowConcurrency, durationSeconds: D, warmupSeconds: warmup })],
    ],
    authcode_flows_nohash: async (s, _r, warmup) => [
      ['authcode_flows_nohash', await load(s, { kind: 'flows', base: s.base, rp: s.rp, login: NOHASH_LOGIN, concurrency: settings.flowConcurrency, durationSeconds: D, warmupSeconds: warmup })],
    ],
    discovery_idle: async (s) => [['discovery_idle', await runLoad(probe(s, 0))]],
    logins: async (s) => {
      // POST /api/token/ saturating the server (starting `lead` s before the probe and ending
      // `lead` s after it), while the discovery probe measures latency from another process.
      const lead = settings.quick ? 0.5 : 1;
      const [logins, probed] = await Promise.all([
        load(s, {
          kind: 'http',
          url: `${s.base}/api/token/`,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(LOGIN),
          connections: settings.loginConnections,
          durationSeconds: D + 2 * lead,
          warmupSeconds: 0,
          expectBodyIncludes: '"access"',
        }),
        runLoad(probe(s, lead)),
      ]);
      // Let the hashing queue drain before the next workload.
      await sleep(1000);
      return [
        ['logins', logins],
        ['discovery_under_logins', probed],
      ];
    },
    growth_client_credentials: async (s, r, warmup) => (await clientCredentials(s, r, warmup)).map(([, result]) => ['growth_client_credentials', result]),
  };
}

function machineInfo(): MachineInfo {
  const commit = gitCommit();
  return {
    date: new Date().toISOString(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.cpus().length,
    availableParallelism: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    oidcProvider: packageVersion('oidc-provider'),
    autocannon: packageVersion('autocannon'),
    loadAverageStart: os.loadavg(),
    ...(commit ? { gitCommit: commit } : {}),
  };
}

/** Which backends to run: PostgreSQL only when it answers (and then it must, with CI=true). */
async function chooseBackends(machine: MachineInfo, skipped: string[]): Promise<Array<'sqlite' | 'pg'>> {
  const ci = process.env['CI'] === 'true' || process.env['CI'] === '1';
  const pgProblem = await postgresProblem();
  if (pgProblem && ci) throw new Error(`CI=true but PostgreSQL is unreachable at ${PG_ADMIN_URL}: ${pgProblem}`);
  if (pgProblem) {
    const line = `latchkey-pg skipped: PostgreSQL unreachable at ${PG_ADMIN_URL} (${pgProblem})`;
    console.log(line);
    skipped.push(line);
    return ['sqlite'];
  }
  const version = await postgresVersion();
  if (version) machine.postgres = version;
  return ['sqlite', 'pg'];
}

async function startMain(backends: Array<'sqlite' | 'pg'>, nodeArgs: string[] = [], candidates: Settings['candidates'] = []): Promise<RunningSystem[]> {
  log('starting systems: ceiling, ' + backends.map((b) => `latchkey-${b}`).join(', ') + candidates.map((c) => `, candidate ${c.label} (${c.root})`).join(''));
  const systems = await Promise.all([
    startCeiling(nodeArgs),
    ...backends.map(async (b) => startLatchkey(`latchkey-${b}`, await freshDatabase(b), { nodeArgs })),
    ...candidates.flatMap((c) => backends.map(async (b) => startLatchkey(`latchkey-${b} [${c.label}]`, await freshDatabase(b), { nodeArgs, root: c.root }))),
  ]);
  for (const s of systems) {
    await get200(`${s.base}${DISCOVERY}`);
    log(`${s.name} ready at ${s.base} (pid ${s.pid})`);
  }
  return systems;
}

/** Per backend: Latchkey on an empty database and on one with `rows` rows in oidc_payloads. */
async function startGrowth(backends: Array<'sqlite' | 'pg'>, rows: number, growthRows: Record<string, number>): Promise<RunningSystem[]> {
  const label = rows >= 1_000_000 && rows % 1_000_000 === 0 ? `${rows / 1_000_000}M rows` : `${rows / 1000}k rows`;
  const pairs = await Promise.all(
    backends.map(async (backend) => {
      const emptyDb = await freshDatabase(backend);
      const fullDb = await freshDatabase(backend);
      await migrate(fullDb);
      const t0 = Date.now();
      const knex = openKnex(fullDb);
      try {
        growthRows[`latchkey-${backend}`] = await prefillPayloads(knex, backend, rows);
      } finally {
        await knex.destroy();
      }
      log(`latchkey-${backend}: ${growthRows[`latchkey-${backend}`]!.toLocaleString('en-US')} rows in oidc_payloads after ${((Date.now() - t0) / 1000).toFixed(1)} s of inserts`);
      return [
        await startLatchkey(`latchkey-${backend} (empty)`, emptyDb, { withUser: false }),
        await startLatchkey(`latchkey-${backend} (${label})`, fullDb, { withUser: false }),
      ];
    }),
  );
  return pairs.flat();
}

function printResult(round: number, workload: WorkloadId, system: RunningSystem, result: LoadResult): void {
  const latency = workload === 'authcode_flows' || workload === 'authcode_flows_nohash' ? 'per flow' : '';
  console.log(
    `  r${round + 1} ${WORKLOAD_LABELS[workload].padEnd(42)} ${system.name.padEnd(26)} ${result.rps.toFixed(1).padStart(8)}/s` +
      `  p50 ${result.p50.toFixed(2).padStart(7)} ms  p99 ${result.p99.toFixed(2).padStart(8)} ms ${latency}` +
      `${result.serverCpuSeconds !== undefined ? `  server CPU ${Math.round((100 * result.serverCpuSeconds) / result.seconds)}%` : ''}` +
      `  load-gen CPU ${Math.round((100 * result.loadCpuSeconds) / Math.max(result.seconds, 0.001))}%` +
      `${result.errors ? `  ERRORS ${result.errors}: ${result.errorSamples.join(' | ')}` : ''}`,
  );
}

/**
 * --profile WORKLOAD: the ceiling and Latchkey started under `node --cpu-prof`, the workload
 * run once against each, then each server's main-thread profile summarised (top self time).
 * Profiles are kept in bench/results/profiles/.
 */
async function profile(settings: Settings, workload: Runnable): Promise<number> {
  const machine = machineInfo();
  const backends = await chooseBackends(machine, []);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-prof-'));
  const systems = await startMain(backends, ['--cpu-prof', `--cpu-prof-dir=${dir}`], settings.candidates);
  const runners = makeRunners(settings);
  const run = runners[workload];
  const targets = workload === 'authcode_flows_nohash' ? systems.filter((s) => s.kind === 'ceiling') : ['logins', 'discovery_idle'].includes(workload) ? systems.filter((s) => s.kind === 'latchkey') : systems;
  // No warm-up: every request the server saw (but the few minting fixtures) is in `served`.
  const served = new Map<string, number>();
  for (const s of targets) {
    for (const [w, result] of await run(s, 0, 0)) {
      printResult(0, w, s, result);
      served.set(s.name, (served.get(s.name) ?? 0) + result.total);
    }
  }
  await cleanup();
  const out = path.join(ROOT, 'bench/results/profiles');
  fs.mkdirSync(out, { recursive: true });
  for (const s of targets) {
    const files = fs.readdirSync(dir).filter((f) => f.includes(`.${s.pid}.`)).sort();
    for (const f of files) {
      const thread = /\.\d+\.(\d+)\.\d+\.cpuprofile$/.exec(f)?.[1] ?? '?';
      const dest = path.join(out, `${workload}-${s.name}-thread${thread}.cpuprofile`);
      fs.copyFileSync(path.join(dir, f), dest);
      if (thread === '0') {
        console.log(`\n### ${s.name} main thread, ${WORKLOAD_LABELS[workload]}`);
        console.log(summariseProfile(dest, 30, served.get(s.name)));
      } else {
        console.log(`\n(${s.name}: worker thread ${thread} profile saved as ${path.relative(ROOT, dest)})`);
      }
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return 0;
}

async function main(): Promise<number> {
  const started = Date.now();
  const settings = settingsFrom(process.argv.slice(2));
  if (settings.profile) return profile(settings, settings.profile);
  const machine = machineInfo();
  console.log(
    `Latchkey benchmark (${settings.quick ? 'quick smoke' : 'full'}): ${settings.rounds} round(s), ${settings.durationSeconds} s per workload; ` +
      `${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}`,
  );
  const skipped: string[] = [];
  const backends = await chooseBackends(machine, skipped);
  const growthRows: Record<string, number> = {};
  const wants = (w: Runnable) => !settings.only || settings.only.includes(w);
  const [mainSystems, growth] = await Promise.all([
    startMain(backends, [], settings.candidates),
    wants('growth_client_credentials') ? startGrowth(backends, settings.growthRows, growthRows) : Promise.resolve([]),
  ]);
  const ceiling = mainSystems.find((s) => s.kind === 'ceiling')!;
  const latchkeys = mainSystems.filter((s) => s.kind === 'latchkey');

  const runners = makeRunners(settings);
  const schedule: Array<[Runnable, RunningSystem[]]> = [
    ['discovery', mainSystems],
    ['jwks', mainSystems],
    ['client_credentials', mainSystems],
    ['introspection', mainSystems],
    ['userinfo', mainSystems],
    ['refresh_token', mainSystems],
    ['authcode_flows', mainSystems],
    ['authcode_flows_nohash', [ceiling]],
    ['discovery_idle', latchkeys],
    ['logins', latchkeys],
    ['growth_client_credentials', growth],
  ].filter(([w]) => wants(w as Runnable)) as Array<[Runnable, RunningSystem[]]>;

  const measurements: Measurement[] = [];
  const failures: string[] = [];
  const bcryptRates: number[] = [];
  for (let round = 0; round < settings.rounds; round++) {
    const warmup = round === 0 ? settings.warmupSeconds : 0;
    console.log(`round ${round + 1} of ${settings.rounds}`);
    for (const [workload, systems] of schedule) {
      // Systems one after another within each workload; the order rotates every round.
      for (const s of rotate(systems, round)) {
        try {
          for (const [w, result] of await runners[workload](s, round, warmup)) {
            measurements.push({ round, workload: w, system: s.name, result });
            printResult(round, w, s, result);
          }
        } catch (error) {
          const message = `${WORKLOAD_LABELS[workload]} on ${s.name}: ${error instanceof Error ? error.message : String(error)}`;
          failures.push(message);
          console.log(`  r${round + 1} FAILED ${message}`);
        }
        await sleep(settings.quick ? 100 : 300);
      }
    }
    const rateNow = await bcryptRate(settings.bcryptSeconds);
    bcryptRates.push(rateNow);
    console.log(`  r${round + 1} single-thread bcrypt (cost 10): ${rateNow.toFixed(1)} hashes/s`);
  }

  machine.loadAverageEnd = os.loadavg();
  log('stopping systems');
  await cleanup();

  // --- report ------------------------------------------------------------------------------
  const summaries = summarise(measurements);
  const bcrypt = median(bcryptRates);
  const systems = [...mainSystems, ...growth].map((s) => s.name);
  const targets = targetsFor(summaries, bcrypt, systems);
  const elapsedSeconds = (Date.now() - started) / 1000;
  const report = {
    mode: settings.quick ? ('quick' as const) : ('full' as const),
    settings: { ...settings },
    machine,
    systems,
    skipped,
    summaries,
    targets,
    bcryptRate: bcrypt,
    bcryptRates,
    growthRows,
    elapsedSeconds,
  };
  const md = markdown(report);
  const resultsDir = path.join(ROOT, 'bench/results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const stamp = machine.date.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  // Only a full run of every workload is a result; smoke and partial runs overwrite their own files.
  const kind = settings.quick ? 'quick' : settings.only || settings.candidates.length ? 'partial' : undefined;
  const jsonPath = path.join(resultsDir, kind ? `${kind}-latest.json` : `${stamp}.json`);
  const mdPath = path.join(resultsDir, kind ? `${kind}-latest.md` : 'latest.md');
  fs.writeFileSync(jsonPath, `${JSON.stringify({ ...report, measurements, failures }, null, 2)}\n`);
  fs.writeFileSync(mdPath, md);

  console.log('');
  console.log(md);
  console.log(`results: ${path.relative(process.cwd(), jsonPath)}, ${path.relative(process.cwd(), mdPath)}`);

  const runs = measurements.length + failures.length;
  const erroneous = measurements.filter((m) => m.result.errors > 0).length + failures.length;
  const passed = targets.filter((t) => t.status === 'PASS').length;
  const failed = targets.filter((t) => t.status === 'FAIL').length;
  if (settings.quick) {
    if (erroneous === 0) {
      console.log(`bench smoke: ${runs} workloads completed without errors`);
      return 0;
    }
    console.log(`bench smoke: ${erroneous} of ${runs} workloads had errors`);
    return 1;
  }
  console.log(`bench: ${runs} workloads, ${erroneous ? `${erroneous} with errors` : 'no errors'}; targets: ${passed} PASS, ${failed} FAIL`);
  return erroneous ? 1 : 0;
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`bench interrupted (${signal}): stopping systems and dropping databases`);
    void cleanup().finally(() => process.exit(130));
  });
}
// Whatever happens, no server or load generator outlives this process.
process.on('exit', () => killChildren('SIGKILL'));

main().then(
  async (code) => {
    await cleanup();
    process.exit(code);
  },
  async (error: unknown) => {
    console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    await cleanup();
    process.exit(1);
  },
);
