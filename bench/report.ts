/**
 * Aggregation across rounds, ratios to the ceiling, targets, and the Markdown report.
 */
import type { LoadResult } from './protocol.js';

export type WorkloadId =
  | 'discovery'
  | 'jwks'
  | 'client_credentials'
  | 'introspection'
  | 'userinfo'
  | 'refresh_token'
  | 'authcode_flows'
  | 'authcode_flows_nohash'
  | 'discovery_idle'
  | 'logins'
  | 'discovery_under_logins'
  | 'growth_client_credentials';

export const WORKLOAD_LABELS: Record<WorkloadId, string> = {
  discovery: 'discovery GET',
  jwks: 'JWKS GET',
  client_credentials: 'client_credentials grant',
  introspection: 'introspection (valid access token)',
  userinfo: 'userinfo (valid access token)',
  refresh_token: 'refresh_token grant (rotating)',
  authcode_flows: 'auth-code + PKCE flows (flows/s)',
  authcode_flows_nohash: 'auth-code flows, no password hash [info]',
  discovery_idle: 'discovery p99 probe, idle',
  logins: 'POST /api/token/ logins (bcrypt 10)',
  discovery_under_logins: 'discovery p99 probe, logins saturating',
  growth_client_credentials: 'client_credentials, growth table',
};

export interface Measurement {
  round: number;
  workload: WorkloadId;
  system: string;
  result: LoadResult;
}

export interface Summary {
  workload: WorkloadId;
  system: string;
  rounds: number;
  /** Medians over rounds. */
  rps: number;
  p50: number;
  p99: number;
  mean: number;
  total: number;
  errors: number;
  errorSamples: string[];
  /** rps / the ceiling's rps for the same workload (main systems only). */
  ratio?: number;
  /** Server CPU time (all threads) per request (or flow), in ms; median over rounds. */
  serverCpuMsPerRequest?: number;
  /** Server CPU time / wall time (1 = one core busy). */
  serverCpuUtilisation?: number;
  /** Load generator CPU time / wall time. */
  loadCpuUtilisation: number;
  /** The ceiling's CPU per request / this system's: throughput per CPU-second, relative to the ceiling. */
  cpuRatio?: number;
}

export interface Target {
  id: string;
  description: string;
  measured: number | undefined;
  threshold: number;
  comparison: '>=' | '<=';
  status: 'PASS' | 'FAIL' | 'SKIP';
  detail: string;
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarise(measurements: Measurement[]): Summary[] {
  const groups = new Map<string, Measurement[]>();
  for (const m of measurements) {
    const key = `${m.workload}\u0000${m.system}`;
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  const out: Summary[] = [];
  for (const list of groups.values()) {
    const first = list[0]!;
    const results = list.map((m) => m.result);
    out.push({
      workload: first.workload,
      system: first.system,
      rounds: list.length,
      rps: median(results.map((r) => r.rps)),
      p50: median(results.map((r) => r.p50)),
      p99: median(results.map((r) => r.p99)),
      mean: median(results.map((r) => r.mean)),
      total: results.reduce((a, r) => a + r.total, 0),
      errors: results.reduce((a, r) => a + r.errors, 0),
      errorSamples: [...new Set(results.flatMap((r) => r.errorSamples))].slice(0, 5),
      loadCpuUtilisation: median(results.map((r) => (r.seconds > 0 ? r.loadCpuSeconds / r.seconds : 0))),
    });
    const cpu = results.filter((r) => r.serverCpuSeconds !== undefined && r.total > 0);
    if (cpu.length) {
      out[out.length - 1]!.serverCpuMsPerRequest = median(cpu.map((r) => (1000 * r.serverCpuSeconds!) / r.total));
      out[out.length - 1]!.serverCpuUtilisation = median(cpu.map((r) => r.serverCpuSeconds! / r.seconds));
    }
  }
  for (const s of out) {
    const ceiling = out.find((c) => c.workload === s.workload && c.system === 'ceiling');
    if (ceiling && s.system !== 'ceiling' && ceiling.rps > 0) s.ratio = s.rps / ceiling.rps;
    if (ceiling && s.system !== 'ceiling' && ceiling.serverCpuMsPerRequest && s.serverCpuMsPerRequest) {
      s.cpuRatio = ceiling.serverCpuMsPerRequest / s.serverCpuMsPerRequest;
    }
  }
  return out;
}

const fmt = (n: number | undefined, digits = 1) => (n === undefined || Number.isNaN(n) ? '–' : n.toFixed(digits));
const rate = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));

export function targetsFor(summaries: Summary[], bcryptRate: number, systems: string[]): Target[] {
  const get = (w: WorkloadId, s: string) => summaries.find((x) => x.workload === w && x.system === s);
  const has = (s: string) => systems.includes(s);
  const targets: Target[] = [];
  const add = (id: string, description: string, measured: number | undefined, comparison: '>=' | '<=', threshold: number, detail: string, skip?: boolean) => {
    const status: Target['status'] =
      skip || measured === undefined || Number.isNaN(measured) ? 'SKIP' : (comparison === '>=' ? measured >= threshold : measured <= threshold) ? 'PASS' : 'FAIL';
    targets.push({ id, description, measured, threshold, comparison, status, detail });
  };
  const ratioTarget = (id: string, w: WorkloadId, s: string, threshold: number) => {
    const sum = get(w, s);
    const ceiling = get(w, 'ceiling');
    add(
      id,
      `${WORKLOAD_LABELS[w]}: ${s} >= ${threshold}x ceiling`,
      sum?.ratio,
      '>=',
      threshold,
      sum && ceiling ? `${rate(sum.rps)} vs ${rate(ceiling.rps)} /s` : 'not measured',
      !has(s),
    );
  };
  ratioTarget('client_credentials.sqlite', 'client_credentials', 'latchkey-sqlite', 0.6);
  ratioTarget('client_credentials.pg', 'client_credentials', 'latchkey-pg', 0.35);
  ratioTarget('introspection.sqlite', 'introspection', 'latchkey-sqlite', 0.7);
  ratioTarget('userinfo.sqlite', 'userinfo', 'latchkey-sqlite', 0.7);
  ratioTarget('authcode_flows.sqlite', 'authcode_flows', 'latchkey-sqlite', 0.5);
  for (const s of ['latchkey-sqlite', 'latchkey-pg']) {
    const idle = get('discovery_idle', s);
    const loaded = get('discovery_under_logins', s);
    add(
      `discovery_p99_under_logins.${s.replace('latchkey-', '')}`,
      `${s}: discovery p99 with logins saturating <= 3x idle p99`,
      idle && loaded && idle.p99 > 0 ? loaded.p99 / idle.p99 : undefined,
      '<=',
      3,
      idle && loaded ? `${fmt(loaded.p99, 2)} ms vs ${fmt(idle.p99, 2)} ms idle` : 'not measured',
      !has(s),
    );
    const logins = get('logins', s);
    add(
      `logins.${s.replace('latchkey-', '')}`,
      `${s}: logins/s >= 1.7x single-thread bcrypt rate`,
      logins && bcryptRate > 0 ? logins.rps / bcryptRate : undefined,
      '>=',
      1.7,
      logins ? `${fmt(logins.rps)} logins/s vs ${fmt(bcryptRate)} hashes/s on one thread` : 'not measured',
      !has(s),
    );
    const empty = get('growth_client_credentials', `${s} (empty)`);
    const full = summaries.find((x) => x.workload === 'growth_client_credentials' && x.system.startsWith(`${s} (`) && !x.system.endsWith('(empty)'));
    add(
      `growth.${s.replace('latchkey-', '')}`,
      `${s}: client_credentials with the grown table >= 0.9x empty`,
      empty && full && empty.rps > 0 ? full.rps / empty.rps : undefined,
      '>=',
      0.9,
      empty && full ? `${rate(full.rps)} vs ${rate(empty.rps)} /s` : 'not measured',
      !has(s),
    );
  }
  return targets;
}

export interface MachineInfo {
  date: string;
  cpuModel: string;
  cores: number;
  availableParallelism: number;
  memoryGiB: number;
  node: string;
  os: string;
  oidcProvider: string;
  autocannon: string;
  postgres?: string;
  gitCommit?: string;
  loadAverageStart: number[];
  loadAverageEnd?: number[];
}

export interface ReportInput {
  mode: 'full' | 'quick';
  settings: Record<string, unknown>;
  machine: MachineInfo;
  systems: string[];
  skipped: string[];
  summaries: Summary[];
  targets: Target[];
  bcryptRate: number;
  bcryptRates: number[];
  growthRows: Record<string, number>;
  elapsedSeconds: number;
}

/** Every workload, in the order runs and reports take them. */
export const WORKLOAD_ORDER: readonly WorkloadId[] = [
  'discovery',
  'jwks',
  'client_credentials',
  'introspection',
  'userinfo',
  'refresh_token',
  'authcode_flows',
  'authcode_flows_nohash',
  'logins',
  'discovery_idle',
  'discovery_under_logins',
  'growth_client_credentials',
];

export function markdown(input: ReportInput): string {
  const { machine: m, summaries } = input;
  const lines: string[] = [];
  lines.push(`# Latchkey benchmark (${input.mode} run, ${m.date})`, '');
  lines.push(
    `Machine: ${m.cpuModel}, ${m.cores} cores (available parallelism ${m.availableParallelism}), ${m.memoryGiB} GiB; ` +
      `Node ${m.node}; ${m.os}; oidc-provider ${m.oidcProvider}; autocannon ${m.autocannon}` +
      `${m.postgres ? `; ${m.postgres}` : ''}${m.gitCommit ? `; commit ${m.gitCommit}` : ''}.`,
  );
  lines.push(
    `Load average at start ${m.loadAverageStart.map((x) => x.toFixed(2)).join(' ')}` +
      `${m.loadAverageEnd ? `, at end ${m.loadAverageEnd.map((x) => x.toFixed(2)).join(' ')}` : ''} (other work on the machine shows here).`,
  );
  const s = input.settings;
  lines.push(
    `Settings: ${s['rounds']} round(s) alternating systems per workload, ${s['durationSeconds']} s per workload` +
      ` (+${s['warmupSeconds']} s warm-up in round 1), ${s['connections']} connections` +
      ` (flows: ${s['flowConcurrency']} concurrent; logins: ${s['loginConnections']} connections; probe: ${s['probeRate']} req/s open loop);` +
      ` load from separate processes; figures are medians over rounds. Total time ${Math.round(input.elapsedSeconds)} s.`,
  );
  if (input.skipped.length) lines.push('', ...input.skipped.map((x) => `Skipped: ${x}`));
  lines.push(
    '',
    '| workload | system | req/s | p50 ms | p99 ms | × ceiling | server CPU ms/req | × ceiling per CPU | server CPU | load-gen CPU | errors |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  const percent = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '–' : `${Math.round(100 * x)}%`);
  for (const w of WORKLOAD_ORDER) {
    for (const sum of summaries.filter((x) => x.workload === w)) {
      const probe = w.startsWith('discovery_');
      lines.push(
        `| ${WORKLOAD_LABELS[w]} | ${sum.system} | ${probe ? fmt(sum.rps) : rate(sum.rps)} | ${fmt(sum.p50, 2)} | ${fmt(sum.p99, 2)} | ` +
          `${sum.ratio === undefined ? '' : `${sum.ratio.toFixed(2)}x`} | ${probe ? '' : fmt(sum.serverCpuMsPerRequest, sum.serverCpuMsPerRequest !== undefined && sum.serverCpuMsPerRequest >= 10 ? 1 : 3)} | ` +
          `${sum.cpuRatio === undefined ? '' : `${sum.cpuRatio.toFixed(2)}x`} | ${probe ? '' : percent(sum.serverCpuUtilisation)} | ${percent(sum.loadCpuUtilisation)} | ${sum.errors} |`,
      );
    }
  }
  lines.push(
    '',
    `Single-thread bcrypt (bcryptjs, cost 10, SHA-256 pre-hash, as Latchkey's worker): ${fmt(input.bcryptRate)} hashes/s` +
      ` (per round: ${input.bcryptRates.map((x) => fmt(x)).join(', ')}).`,
  );
  const rows = Object.entries(input.growthRows);
  if (rows.length) lines.push(`Growth tables: ${rows.map(([k, v]) => `${k} ${v.toLocaleString('en-US')} rows in oidc_payloads before the run`).join('; ')}.`);
  lines.push('', '| target | measured | threshold | result | detail |', '| --- | ---: | ---: | --- | --- |');
  for (const t of input.targets) {
    lines.push(`| ${t.description} | ${t.measured === undefined || Number.isNaN(t.measured) ? '–' : `${t.measured.toFixed(2)}x`} | ${t.comparison} ${t.threshold}x | ${t.status} | ${t.detail} |`);
  }
  const withErrors = summaries.filter((x) => x.errors > 0);
  if (withErrors.length) {
    lines.push('', 'Errors:');
    for (const e of withErrors) lines.push(`- ${WORKLOAD_LABELS[e.workload]} on ${e.system}: ${e.errors} (${e.errorSamples.join(' | ')})`);
  }
  lines.push(
    '',
    'Notes: the ceiling is bare node-oidc-provider with its in-memory adapter and a minimal interaction handler (bench/ceiling-server.ts);' +
      ' it checks the password with the same bcrypt work as Latchkey (the [info] row shows flows without any hash).' +
      ' Latency of the flows row is per whole flow. Discovery probe rows are open-loop (fixed request rate), their req/s is the probe rate.' +
      ' Server CPU is user+system time of the server process (all threads, from /proc) over the measured window; 100% = one core.' +
      ' "× ceiling per CPU" compares CPU per request, which other work on the machine disturbs less than throughput.' +
      ' The machine has 2 cores shared by the server, the load generator and anything else running.',
  );
  return `${lines.join('\n')}\n`;
}
