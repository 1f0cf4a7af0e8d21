import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The benchmark harness stays runnable: `npm run bench -- --quick` starts the ceiling and
 * Latchkey on SQLite and PostgreSQL, runs every workload against every system for a moment,
 * and must end with exit 0 and its smoke line. No timing is asserted (this machine's numbers
 * mean nothing while other tests run); only that nothing failed.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const LIMIT_MS = 5 * 60_000;

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let running: ChildProcess | undefined;

/** Kills the whole process group (npm, the harness, its servers and load generators). */
function killGroup(child: ChildProcess | undefined): void {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

afterAll(() => killGroup(running));

describe('benchmark harness (npm run bench -- --quick)', () => {
  it(
    'runs every workload on every system without errors',
    async () => {
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const key of Object.keys(env)) if (key.startsWith('LATCHKEY_TEST_') || key === 'VITEST' || key.startsWith('VITEST_')) delete env[key];
      const result = await new Promise<Result>((resolve, reject) => {
        // Its own process group, so a hang can be killed whole.
        const child = spawn('npm', ['run', '--silent', 'bench', '--', '--quick'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
        running = child;
        let stdout = '';
        let stderr = '';
        child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
        child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
        const timer = setTimeout(() => killGroup(child), LIMIT_MS);
        child.on('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal, stdout, stderr });
        });
      });
      const explain = `exit ${result.code} (signal ${result.signal})\n--- stdout (tail)\n${result.stdout.slice(-6000)}\n--- stderr (tail)\n${result.stderr.slice(-3000)}`;
      expect(result.code, explain).toBe(0);
      const last = result.stdout.trim().split('\n').at(-1) ?? '';
      expect(last, explain).toMatch(/^bench smoke: \d+ workloads completed without errors$/);
    },
    LIMIT_MS + 30_000,
  );
});
