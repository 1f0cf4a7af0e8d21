/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): where a server's main thread spent its
 * busy time once it began serving requests (samples before the first HTTP request, i.e.
 * start-up, and idle samples are left out), by package and by function, self and inclusive.
 * With the number of requests served, also in microseconds per request. V8 samples on a
 * wall clock: a thread that is runnable but waiting for a core (other threads or processes
 * busy) counts as busy in whatever it was doing, so on a loaded machine the absolute figures
 * run high (system calls such as writev most); the proportions stay useful.
 *
 *   node dist/bench/profile-summary.js <file.cpuprofile> [top=30] [requests]
 */
import fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function where(url: string): string {
  if (!url) return '(native/V8)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return 'node (core)';
  const own = /\/(dist\/(?:src|bench)\/.*)$/.exec(url);
  return own ? own[1]! : url;
}

export function summariseProfile(file: string, top = 30, requests?: number): string {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stack = (id: number) => {
    const frames: ProfileNode[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (n) frames.push(n);
    }
    return frames;
  };
  // Start at the first sample that is serving an HTTP request: start-up is not the subject.
  const serving = new Map<number, boolean>();
  const isServing = (id: number) => {
    let known = serving.get(id);
    if (known === undefined) {
      known = stack(id).some((n) => n.callFrame.functionName === 'parserOnIncoming');
      serving.set(id, known);
    }
    return known;
  };
  let first = profile.samples.findIndex((id) => isServing(id));
  if (first < 0) first = 0;

  const selfUs = new Map<number, number>();
  for (let i = first; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  let idle = 0;
  let sampled = 0;
  for (const [id, us] of selfUs) {
    sampled += us;
    if (byId.get(id)?.callFrame.functionName === '(idle)') idle += us;
  }
  const busy = Math.max(1, sampled - idle);

  const fns = new Map<string, number>();
  const pkgs = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const inclusivePkg = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us);
  const label = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'}  ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node || node.callFrame.functionName === '(idle)') continue;
    const { functionName, url } = node.callFrame;
    add(fns, url ? label(node) : functionName || '(anonymous)', us);
    add(pkgs, ['(garbage collector)', '(program)'].includes(functionName) ? functionName : where(url), us);
    const seen = new Set<string>();
    const seenPkg = new Set<string>();
    for (const n of stack(id)) {
      if (!n.callFrame.url) continue;
      const pkg = where(n.callFrame.url).replace(/^dist\/src\/([^/]+)\/.*$/, 'latchkey src/$1');
      if (!seenPkg.has(pkg)) {
        seenPkg.add(pkg);
        add(inclusivePkg, pkg, us);
      }
      const k = label(n);
      if (!seen.has(k)) {
        seen.add(k);
        add(inclusive, k, us);
      }
    }
  }

  const cell = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)}%${requests ? `  ${(us / requests).toFixed(1).padStart(6)} µs/req` : ''}`;
  const sorted = (map: Map<string, number>, n: number) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n);
  const lines = [
    `${file}: ${(busy / 1e6).toFixed(2)} s busy while serving (${(idle / 1e6).toFixed(1)} s idle and start-up left out)` +
      `${requests ? `, ${requests} requests: ${(busy / requests).toFixed(0)} µs of main-thread CPU per request` : ''}`,
    '',
    'self time by package:',
    ...sorted(pkgs, 14).map(([k, v]) => `  ${cell(v)}  ${k}`),
    '',
    `top ${top} functions by self time (a native call's time shows under its JavaScript caller):`,
    ...sorted(fns, top).map(([k, v]) => `  ${cell(v)}  ${k}`),
    '',
    'inclusive time by package (synchronous stacks: work after an await is not joined to its caller):',
    ...sorted(inclusivePkg, 16).map(([k, v]) => `  ${cell(v)}  ${k}`),
  ];
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, top, requests] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node dist/bench/profile-summary.js <file.cpuprofile> [top] [requests]');
    process.exit(2);
  }
  console.log(summariseProfile(file, top ? Number(top) : 30, requests ? Number(requests) : undefined));
}
