/**
 * The shell examples of README.md as a runnable script: which blocks run, each statement
 * with the answer the README documents for it, and a matcher for those answers.
 *
 * A ```sh block runs unless the line before its fence is `<!-- not run: <why> -->`.
 * Statements are lines (a trailing backslash continues one); a comment line right after a
 * statement that starts with `{`, `[` or an HTTP status (`# 401 {"error":"invalid_token",…}`)
 * documents its answer: keys shown must be there with those values, `…` inside a string
 * stands for anything, and keys not shown may be there too.
 */

export interface ReadmeBlock {
  /** 1-based line of the opening fence. */
  line: number;
  text: string;
  /** Why the block is not run, when the README says so. */
  notRun?: string;
}

export interface Statement {
  block: number;
  /** 1-based README line where the statement starts. */
  line: number;
  command: string;
  /** The status the README documents (an error answer it shows on purpose). */
  status?: number;
  /** The documented JSON answer, with `…` for anything. */
  answer?: unknown;
}

/** Every ```sh block of the README, with its "not run" reason if it has one. */
export function shellBlocks(readme: string): ReadmeBlock[] {
  const lines = readme.split('\n');
  const blocks: ReadmeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```sh') continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i] ?? '');
    let before = start - 1;
    while (before >= 0 && lines[before]?.trim() === '') before--;
    const reason = /^<!-- not run: (.+) -->$/.exec(lines[before]?.trim() ?? '')?.[1];
    blocks.push({ line: start + 1, text: body.join('\n'), ...(reason ? { notRun: reason } : {}) });
  }
  return blocks;
}

/** The text from the first `{` or `[` to its balanced end (so prose after it is left out). */
function leadingJson(text: string): string | undefined {
  const open = text[0];
  if (open !== '{' && open !== '[') return undefined;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return text.slice(0, i + 1);
    }
  }
  return undefined;
}

/** `…` as a member (`,…}`, `[…]`) means "and more": dropped before parsing. */
function parseDocumented(json: string): unknown {
  const cleaned = json.replace(/,\s*…\s*([}\]])/g, '$1').replace(/([{[])\s*…\s*([}\]])/g, '$1$2');
  return JSON.parse(cleaned) as unknown;
}

/** The statements of one block, each with what the README documents for it. */
export function statementsOf(block: ReadmeBlock, index: number): Statement[] {
  const out: Statement[] = [];
  const lines = block.text.split('\n');
  let current: Statement | undefined;
  let documented = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const trimmed = line.trim();
    if (!trimmed) continue;
    if (trimmed.startsWith('#')) {
      const text = trimmed.replace(/^#\s?/, '');
      const match = /^(?:(\d{3})\s*)?([{[].*)?$/.exec(text);
      if (current && !documented && match && (match[1] || match[2])) {
        const json = match[2] ? leadingJson(match[2]) : undefined;
        if (match[1]) current.status = Number(match[1]);
        if (json) current.answer = parseDocumented(json);
        documented = true;
      }
      continue;
    }
    let command = line;
    const startLine = block.line + 1 + i;
    while (command.endsWith('\\') && i + 1 < lines.length) command = `${command}\n${lines[++i] ?? ''}`;
    current = { block: index, line: startLine, command };
    documented = false;
    out.push(current);
  }
  return out;
}

/** Why `actual` is not what the README shows (`documented`), or null when it is. */
export function answerMismatch(documented: unknown, actual: unknown, where = '$'): string | null {
  if (typeof documented === 'string') {
    if (!documented.includes('…')) return documented === actual ? null : `${where}: ${JSON.stringify(actual)} is not ${JSON.stringify(documented)}`;
    if (typeof actual !== 'string') return `${where}: ${JSON.stringify(actual)} is not a string like ${JSON.stringify(documented)}`;
    const pattern = new RegExp(`^${documented.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[\\s\\S]*')}$`);
    return pattern.test(actual) ? null : `${where}: ${JSON.stringify(actual)} does not look like ${JSON.stringify(documented)}`;
  }
  if (Array.isArray(documented)) {
    if (!Array.isArray(actual)) return `${where}: not a list`;
    for (const [i, item] of documented.entries()) {
      const problem = answerMismatch(item, actual[i], `${where}[${i}]`);
      if (problem) return problem;
    }
    return null;
  }
  if (documented !== null && typeof documented === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return `${where}: not an object`;
    for (const [key, value] of Object.entries(documented)) {
      if (!(key in actual)) return `${where}.${key} is missing`;
      const problem = answerMismatch(value, (actual as Record<string, unknown>)[key], `${where}.${key}`);
      if (problem) return problem;
    }
    return null;
  }
  return documented === actual ? null : `${where}: ${JSON.stringify(actual)} is not ${JSON.stringify(documented)}`;
}

const BEGIN = '@@readme-begin';
const END = '@@readme-end';
const HTTP = '@@readme-http';

/**
 * One bash script running every statement in order (variables carry over), each between
 * markers on stdout and stderr; `curl` is wrapped to report each response's status on
 * stderr, so a `$(curl … | jq …)` still tells its status. Assignments print what they set.
 */
export function scriptOf(statements: Statement[]): string {
  const parts = [`curl() { command curl -w '%{stderr}${HTTP} %{http_code}\\n' "$@"; }`];
  statements.forEach((s, i) => {
    parts.push(`printf '\\n${BEGIN} ${i}\\n'; printf '${BEGIN} ${i}\\n' >&2`);
    parts.push(s.command);
    const assigned = /^([A-Z_][A-Z0-9_]*)=\$\(/.exec(s.command)?.[1];
    parts.push(`__rc=$?; ${assigned ? `printf '@@readme-var %s\\n' "\${${assigned}}"; ` : ''}printf '\\n${END} ${i} %s\\n' "$__rc"; printf '${END} ${i}\\n' >&2`);
  });
  return `${parts.join('\n')}\n`;
}

export interface StatementOutcome {
  stdout: string;
  exitCode: number;
  httpStatuses: number[];
  /** The value an assignment (`X=$(…)`) set. */
  assigned?: string;
}

/** Splits the script's output back into one outcome per statement. */
export function outcomesOf(stdout: string, stderr: string, count: number): StatementOutcome[] {
  const outcomes: StatementOutcome[] = [];
  for (let i = 0; i < count; i++) {
    const out = new RegExp(`\\n${BEGIN} ${i}\\n([\\s\\S]*?)\\n${END} ${i} (\\d+)\\n`).exec(stdout);
    const err = new RegExp(`${BEGIN} ${i}\\n([\\s\\S]*?)${END} ${i}\\n`).exec(stderr);
    if (!out) break;
    let body = out[1] ?? '';
    let assigned: string | undefined;
    const variable = /(?:^|\n)@@readme-var ([^\n]*)\n*$/.exec(body);
    if (variable) {
      assigned = variable[1] ?? '';
      body = body.slice(0, variable.index);
    }
    const httpStatuses = [...(err?.[1] ?? '').matchAll(new RegExp(`${HTTP} (\\d{3})`, 'g'))].map((m) => Number(m[1]));
    outcomes.push({ stdout: body.trim(), exitCode: Number(out[2]), httpStatuses, ...(assigned !== undefined ? { assigned } : {}) });
  }
  return outcomes;
}
