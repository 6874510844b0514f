// Reading manifests from --config paths: a YAML file, or a directory of them (*.yaml, *.yml, *.json, sorted).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, parseManifests, type Manifest } from './manifest.js';

const MANIFEST_FILE = /\.(ya?ml|json)$/i;

/** The files a set of --config paths stands for. */
export function configFiles(paths: string[]): string[] {
  const files: string[] = [];
  for (const p of paths) {
    const abs = resolve(p);
    let st;
    try {
      st = statSync(abs);
    } catch {
      throw new ConfigError([`${p}: no such file or directory`]);
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(abs).sort()) if (MANIFEST_FILE.test(name)) files.push(join(abs, name));
    } else files.push(abs);
  }
  return files;
}

/** Reads and validates every manifest of the given paths; all problems are collected before throwing. */
export function readManifestFiles(paths: string[]): Manifest[] {
  const out: Manifest[] = [];
  const problems: string[] = [];
  for (const file of configFiles(paths)) {
    try {
      out.push(...parseManifests(readFileSync(file, 'utf8'), file));
    } catch (err) {
      if (err instanceof ConfigError) problems.push(...err.problems);
      else problems.push(`${file}: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}
