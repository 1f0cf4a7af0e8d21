import net from 'node:net';
import { spawn } from 'node:child_process';

/** How a finished child process ended and what it printed. */
export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A process that hangs (say, waiting on a prompt) is killed and reported, not left behind. */
export const PROCESS_LIMIT_MS = 45_000;

/**
 * Runs a command as an operator would: its own process, stdin /dev/null (not a TTY, and
 * reading it ends at once), stdout and stderr captured, killed after {@link PROCESS_LIMIT_MS}.
 */
export function runProcess(
  command: string,
  args: string[],
  { env, cwd, limitMs = PROCESS_LIMIT_MS }: { env: NodeJS.ProcessEnv; cwd: string; limitMs?: number },
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A TCP port free on 127.0.0.1 right now (for servers that must keep one port across restarts). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
