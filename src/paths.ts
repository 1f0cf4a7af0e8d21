import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (where package.json is), whether we run from src/ or from dist/src/. */
function findRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the Latchkey project root');
    dir = parent;
  }
  return dir;
}

export const PROJECT_ROOT = findRoot();
export const VIEWS_DIR = path.join(PROJECT_ROOT, 'views');
export const STATIC_DIR = path.join(PROJECT_ROOT, 'views', 'static');
