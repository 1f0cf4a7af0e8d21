// node-oidc-provider warns on import under Node 20, which we support deliberately; keep the
// CLI's stderr to the one line that matters. Modules load after this patch (dynamic import).
const warn = console.warn.bind(console);
console.warn = (...args: unknown[]) => {
  if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING: Unsupported runtime')) return;
  warn(...args);
};

const { loadDotEnv } = await import('../load-env.js');
const { runCli } = await import('./run.js');

/** `npm run --silent cli -- <command>`: one line on stderr and a non-zero exit on failure. */
loadDotEnv();
const code = await runCli(
  process.argv.slice(2),
  process.env,
  (line) => process.stdout.write(`${line}\n`),
  (line) => process.stderr.write(`${line}\n`),
);
process.exit(code);
