// The installed package's root (where package.json, examples/ and bench/data/ live), from src/ under tsx or dist/.
import { existsSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the tollgate package root');
    dir = up;
  }
  return dir;
}

/** The compiled counterpart of a source module of this package (`src/a/b.ts` → `dist/src/a/b.js`). */
export function builtUrl(source: URL): URL {
  const root = pathToFileURL(packageRoot() + sep).href;
  if (!source.href.startsWith(root) || !source.href.endsWith('.ts')) throw new Error(`${source.href} is not a source module of this package`);
  return new URL(`dist/${source.href.slice(root.length, -'.ts'.length)}.js`, root);
}
