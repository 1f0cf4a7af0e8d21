import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layers of src/ and the directions their imports may take (ARCHITECTURE.md draws them),
 * and "SQL only in storage". Type-only imports count: a type from an outer layer is a
 * dependency on it all the same.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');

type Layer = 'foundation' | 'locales' | 'observability' | 'storage' | 'migrations' | 'core' | 'oidc' | 'web' | 'cli' | 'root';

/** The files that build and start everything: they may import any layer but the CLI. */
const ROOT_FILES = new Set(['src/app.ts', 'src/server.ts', 'src/start.ts', 'src/composition.ts']);
const FOUNDATION_FILES = new Set(['src/config.ts', 'src/paths.ts', 'src/load-env.ts']);

/** Where a repository path (src/... or migrations/...) belongs; undefined for what is not ours (packages). */
export function layerOf(file: string): Layer | undefined {
  if (ROOT_FILES.has(file)) return 'root';
  if (FOUNDATION_FILES.has(file)) return 'foundation';
  // The REST API's JSON error (ApiError) is HTTP's business, wherever the file lives.
  if (file === 'src/errors.ts') return 'web';
  if (file.startsWith('migrations/')) return 'migrations';
  const [top, dir] = file.split('/');
  if (top !== 'src') return undefined;
  const layers: Record<string, Layer> = {
    locales: 'locales',
    observability: 'observability',
    storage: 'storage',
    core: 'core',
    oidc: 'oidc',
    web: 'web',
    cli: 'cli',
  };
  return dir === undefined ? undefined : layers[dir];
}

/** What each layer may import (itself included); everything else is a violation. */
export const ALLOWED: Record<Layer, readonly Layer[]> = {
  foundation: ['foundation'],
  locales: ['locales', 'foundation'],
  observability: ['observability', 'foundation'],
  migrations: ['migrations'],
  storage: ['storage', 'migrations', 'foundation'],
  core: ['core', 'storage', 'observability', 'locales', 'foundation'],
  oidc: ['oidc', 'core', 'storage', 'observability', 'locales', 'foundation'],
  web: ['web', 'oidc', 'core', 'storage', 'observability', 'locales', 'foundation'],
  cli: ['cli', 'root', 'core', 'storage', 'observability', 'foundation'],
  root: ['root', 'web', 'oidc', 'core', 'storage', 'observability', 'locales', 'foundation', 'migrations'],
};

/** Source without comments (a commented-out import is no dependency); strings stay. */
function withoutComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

/** Every module specifier: static `import`/`export ... from`, side-effect `import '...'`, dynamic `import('...')`. */
export function importsOf(source: string): string[] {
  const code = withoutComments(source);
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\s[^;]*?\sfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) for (const match of code.matchAll(pattern)) if (match[1]) found.push(match[1]);
  return found;
}

/** A relative specifier as a repository path (`../x.js` from src/a/b.ts is src/x.ts). */
function resolve(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  return path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier)).replace(/\.js$/, '.ts');
}

/** Each import that goes the wrong way, as `file -> import (layer -> layer)`. */
export function layerViolations(files: Readonly<Record<string, string>>): string[] {
  const violations: string[] = [];
  for (const [file, source] of Object.entries(files)) {
    const from = layerOf(file);
    if (!from) continue;
    for (const specifier of importsOf(source)) {
      const target = resolve(file, specifier);
      const to = target === undefined ? undefined : layerOf(target);
      if (to === undefined && target !== undefined) violations.push(`${file} -> ${specifier} (${from} -> outside src)`);
      else if (to !== undefined && !ALLOWED[from].includes(to)) violations.push(`${file} -> ${specifier} (${from} -> ${to})`);
    }
  }
  return violations.sort();
}

/**
 * "SQL only in storage": outside src/storage/ (and migrations/) a Knex handle is only passed
 * along. Knex is imported for its types only; a handle (`knex`, `trx`, or any name declared
 * `: Knex` / `: Knex.Transaction`) is never called (`knex('users')`) and no member of it is
 * read (`knex.raw`, `knex.transaction`, `knex.schema`, `trx.commit`), except `knex.destroy()`
 * in the composition root, which owns the pool; and nothing calls `.raw(`, `.whereRaw(`,
 * `.transaction(` or `.schema.` on anything.
 */
export function sqlViolations(files: Readonly<Record<string, string>>): string[] {
  const violations: string[] = [];
  for (const [file, source] of Object.entries(files)) {
    if (file.startsWith('src/storage/') || file.startsWith('migrations/')) continue;
    const code = withoutComments(source);
    const lines = code.split('\n');
    const handles = new Set(['knex', 'trx']);
    for (const match of code.matchAll(/\b(\w+)\??\s*:\s*Knex(?:\.Transaction)?\b/g)) if (match[1]) handles.add(match[1]);
    const names = [...handles].join('|');
    const rules: Array<[RegExp, string]> = [
      [/^\s*import\s+(?!type\b)[^;]*from\s*['"]knex['"]/, 'imports knex as a value'],
      [new RegExp(`(?<![\\w.])(?:${names})\\s*(?:\\(|\\[|\\.\\s*(?!destroy\\s*\\()\\w)`), 'uses a Knex handle'],
      [new RegExp(`(?<![\\w.])(?:${names})\\s*\\.\\s*destroy\\s*\\(`), 'closes the pool'],
      [/\.(?:raw|whereRaw|joinRaw|havingRaw|orderByRaw|transaction)\s*\(|\.schema\s*\./, 'builds SQL'],
    ];
    lines.forEach((line, index) => {
      // Module paths and other strings are no code ('../storage/knex.js' uses no handle).
      const bare = line.replace(/'[^']*'|"[^"]*"/g, "''");
      for (const [pattern, what] of rules) {
        if (what === 'closes the pool' && file === 'src/composition.ts') continue;
        if (pattern.test(what === 'imports knex as a value' ? line : bare)) violations.push(`${file}:${index + 1} ${what}: ${line.trim()}`);
      }
    });
  }
  return violations;
}

function sourcesUnder(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = path.relative(ROOT, path.join(entry.parentPath, entry.name)).split(path.sep).join('/');
    files[file] = readFileSync(path.join(ROOT, file), 'utf8');
  }
  return files;
}

describe('layers', () => {
  const src = sourcesUnder('src');

  it('sorts every file of src/ into a layer', () => {
    expect(Object.keys(src).length).toBeGreaterThan(100);
    expect(Object.keys(src).filter((file) => layerOf(file) === undefined)).toEqual([]);
  });

  it('imports only in the allowed directions', () => {
    // Enough imports were seen for the check to mean something.
    expect(Object.values(src).flatMap(importsOf).length).toBeGreaterThan(500);
    expect(layerViolations(src)).toEqual([]);
  });

  it('keeps SQL in storage', () => {
    expect(sqlViolations(src)).toEqual([]);
  });
});

describe('the layer checks themselves', () => {
  it('see static, type-only, re-export, side-effect and dynamic imports, not commented-out ones', () => {
    const source = [
      "import { a } from './a.js';",
      "import type { B } from '../b.js';",
      "export { c } from './c.js';",
      "export * from './d.js';",
      "import './e.js';",
      "const f = await import('./f.js');",
      "// import { g } from './g.js';",
      "/* import { h } from './h.js'; */",
      'import {',
      '  i,',
      "} from './i.js';",
    ].join('\n');
    expect(importsOf(source)).toEqual(['./a.js', '../b.js', './c.js', './d.js', './i.js', './e.js', './f.js']);
  });

  it('report a forbidden import as file -> import (layer -> layer)', () => {
    const violations = layerViolations({
      'src/core/accounts/x.ts': "import type { Views } from '../../web/http/views.js';\nimport { TTL } from '../tokens/lifetimes.js';",
      'src/storage/y.ts': "const { audit } = await import('../core/audit/audit-log.js');",
      'src/oidc/z.ts': "import { ApiError } from '../errors.js';",
      'src/web/w.ts': "import { runCli } from '../cli/run.js';",
      'src/cli/v.ts': "import { createProvider } from '../oidc/provider.js';\nimport { createServices } from '../composition.js';",
    });
    expect(violations).toEqual([
      'src/cli/v.ts -> ../oidc/provider.js (cli -> oidc)',
      'src/core/accounts/x.ts -> ../../web/http/views.js (core -> web)',
      'src/oidc/z.ts -> ../errors.js (oidc -> web)',
      'src/storage/y.ts -> ../core/audit/audit-log.js (storage -> core)',
      'src/web/w.ts -> ../cli/run.js (web -> cli)',
    ]);
  });

  it('report queries outside storage, and let handles be passed along', () => {
    const violations = sqlViolations({
      'src/core/a.ts': [
        "import type { Knex } from 'knex';",
        'export async function count(knex: Knex) {',
        "  return knex('users').count();",
        '}',
        'export const f = (db: Knex) => db.raw("select 1");',
        'export const g = (trx: Knex.Transaction) => trx.commit();',
        'export const h = (knex: Knex) => createUserRepository(knex);',
        'export const i = (repo: { transaction(): void }) => repo.transaction();',
      ].join('\n'),
      'src/web/b.ts': "import knex from 'knex';\nexport const close = (knex: Knex) => knex.destroy();",
      'src/composition.ts': 'export const close = (knex: Knex) => knex.destroy();',
      'src/storage/users.ts': "export const all = (knex: Knex) => knex('users').select();",
    });
    expect(violations).toEqual([
      "src/core/a.ts:3 uses a Knex handle: return knex('users').count();",
      'src/core/a.ts:5 uses a Knex handle: export const f = (db: Knex) => db.raw("select 1");',
      'src/core/a.ts:5 builds SQL: export const f = (db: Knex) => db.raw("select 1");',
      'src/core/a.ts:6 uses a Knex handle: export const g = (trx: Knex.Transaction) => trx.commit();',
      'src/core/a.ts:8 builds SQL: export const i = (repo: { transaction(): void }) => repo.transaction();',
      "src/web/b.ts:1 imports knex as a value: import knex from 'knex';",
      'src/web/b.ts:2 closes the pool: export const close = (knex: Knex) => knex.destroy();',
    ]);
  });
});
