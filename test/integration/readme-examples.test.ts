import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useServer } from '../helpers/fixture.js';
import { runProcess } from '../helpers/process.js';
import { answerMismatch, outcomesOf, scriptOf, shellBlocks, statementsOf, type Statement } from '../helpers/readme-examples.js';

/**
 * README.md's shell examples, run as written against a real server with a fresh database:
 * every block in order in one bash (variables carry over, `B=http://localhost:3000` and
 * every other mention of that address become this server's), the CLI commands through
 * `npm run --silent cli` on the server's database. Each statement must exit 0, each curl
 * get a 2xx/3xx unless the README documents the error status, and each documented answer
 * must match. A block the README marks `<!-- not run: why -->` is left out, with its reason.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const DOCUMENTED_ORIGIN = 'http://localhost:3000';

describe('README shell examples (sqlite)', () => {
  it('the matcher refuses what differs from the documented answer', () => {
    const [block] = shellBlocks('intro\n```sh\ncurl -s $B/x \\\n  -d a=b\n# 401 {"error":"invalid_token","detail":"…expired…",…}\necho hi\n```\n');
    const [first, second] = statementsOf(block!, 0);
    expect(first).toMatchObject({ command: 'curl -s $B/x \\\n  -d a=b', status: 401, answer: { error: 'invalid_token', detail: '…expired…' } });
    expect(second).toMatchObject({ command: 'echo hi' });
    expect(second).not.toHaveProperty('answer');
    expect(answerMismatch(first!.answer, { error: 'invalid_token', detail: 'The token has expired.', extra: 1 })).toBeNull();
    expect(answerMismatch(first!.answer, { error: 'invalid_token', detail: 'The token is invalid.' })).toMatch(/detail/);
    expect(answerMismatch(first!.answer, { detail: 'expired' })).toMatch(/error is missing/);
    expect(answerMismatch(['a', { b: 1 }], ['a', { b: 2 }])).toMatch(/\[1\]\.b/);
    const [skipped] = shellBlocks('<!-- not run: needs a terminal -->\n\n```sh\nnpm start\n```\n');
    expect(skipped?.notRun).toBe('needs a terminal');
  });

  const fx = useServer('sqlite');

  it('every shell example runs as written and answers as the README says', async () => {
    const blocks = shellBlocks(README);
    const run = blocks.filter((b) => !b.notRun);
    expect(run.length).toBeGreaterThan(3);
    const url = fx.server.url;
    const statements: Statement[] = run.flatMap((b, i) => statementsOf({ ...b, text: b.text.replaceAll(DOCUMENTED_ORIGIN, url) }, i));
    const documentedAnswers = JSON.parse(JSON.stringify(statements.map((s) => s.answer ?? null)).replaceAll(DOCUMENTED_ORIGIN, url)) as unknown[];
    const script = scriptOf(statements);
    const result = await runProcess('bash', ['-c', script], {
      cwd: ROOT,
      // Each `npm run --silent cli` starts npm and node: a few seconds apiece on a busy machine.
      limitMs: 240_000,
      env: { ...process.env, DATABASE_URL: fx.server.db.url, PUBLIC_URL: fx.server.latchkey.config.publicUrl, BCRYPT_COST: '10', B: url },
    });
    const outcomes = outcomesOf(result.stdout, result.stderr, statements.length);
    expect(outcomes.length, `the script stopped early:\n${result.stderr.slice(-2000)}`).toBe(statements.length);

    const problems: string[] = [];
    statements.forEach((statement, i) => {
      const outcome = outcomes[i]!;
      const where = `README.md:${statement.line}: ${statement.command.split('\n')[0]}`;
      if (outcome.exitCode !== 0) problems.push(`${where}: exit ${outcome.exitCode}: ${outcome.stdout.slice(0, 300)}`);
      const bad = outcome.httpStatuses.filter((s) => s >= 400 || s === 0);
      if (statement.status === undefined && bad.length) problems.push(`${where}: HTTP ${bad.join(', ')}: ${outcome.stdout.slice(0, 300)}`);
      if (statement.status !== undefined && outcome.httpStatuses.at(-1) !== statement.status) {
        problems.push(`${where}: HTTP ${outcome.httpStatuses.join(', ')}, the README says ${statement.status}`);
      }
      if (outcome.assigned !== undefined && (outcome.assigned === '' || outcome.assigned === 'null')) problems.push(`${where}: set nothing`);
      const documented = documentedAnswers[i];
      if (documented !== null && documented !== undefined) {
        // An assignment's answer is what it set (`PAIR=$(curl …)`), otherwise what it printed.
        const printed = outcome.assigned ?? outcome.stdout;
        let actual: unknown;
        try {
          actual = JSON.parse(printed);
        } catch {
          problems.push(`${where}: not JSON: ${printed.slice(0, 300)}`);
          return;
        }
        const mismatch = answerMismatch(documented, actual);
        if (mismatch) problems.push(`${where}: ${mismatch}`);
      }
    });
    const skipped = blocks.filter((b) => b.notRun).map((b) => `README.md:${b.line} (${b.notRun})`);
    console.log(`README: ${statements.length} statements in ${run.length} blocks run; not run: ${skipped.join('; ')}`);
    expect(problems).toEqual([]);
  }, 300_000);
});
