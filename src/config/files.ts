// Reading manifests from --config paths: a YAML file, or a directory of them (*.yaml, *.yml, *.json, sorted).
import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { utf8Text } from '../lib/utf8.js';
import { ConfigError, parseManifests, type Manifest } from './manifest.js';

export const MANIFEST_FILE = /\.(ya?ml|json)$/i;
/**
 * What a directory holds that is not a manifest though named like one: hidden files (an Emacs lock `.#models.yaml`,
 * a macOS `._models.yaml`, Kubernetes' `..data`); they failed the start or every reload.
 */
const manifestName = (name: string) => MANIFEST_FILE.test(name) && !name.startsWith('.');

/**
 * Largest manifest file read. Parsing is synchronous and costs ~60x the file in memory: a 10 MB list took 2.5 s and
 * 650 MB, and a 100 MB one ended the process (heap out of memory), on a reload too. Real manifests are kilobytes
 * (Kubernetes caps an object at 1.5 MB), so a larger file is refused as a configuration error.
 */
export const MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024;

/** readBounded's refusal of a path that names no regular file (a FIFO, a device, a directory). */
export class NotRegularFileError extends ConfigError {
  constructor(file: string) {
    super([`${file}: not a regular file`]);
  }
}

/**
 * The file's text, or a ConfigError for what is not a regular file (NotRegularFileError), is over
 * MAX_CONFIG_FILE_BYTES or is not UTF-8: how every manifest file is read (`serve` and `apply` alike), and an
 * OASValidation `source`.
 */
export function readBounded(file: string): string {
  // Checked before opening too: opening a FIFO blocks (the whole process, on a reload) until a writer comes.
  if (!statSync(file).isFile()) throw new NotRegularFileError(file);
  const fd = openSync(file, 'r');
  try {
    // The same check on what was opened (the path may have been replaced in between): a device would never end.
    if (!fstatSync(fd).isFile()) throw new NotRegularFileError(file);
    // Read at most one byte over the limit, so a file that grows after a stat cannot get past it.
    const buf = Buffer.allocUnsafe(MAX_CONFIG_FILE_BYTES + 1);
    let n = 0;
    for (let r; n < buf.length && (r = readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += r;
    if (n > MAX_CONFIG_FILE_BYTES) throw new ConfigError([`${file}: larger than ${MAX_CONFIG_FILE_BYTES} bytes, the limit for a manifest file`]);
    const text = utf8Text(buf.subarray(0, n));
    if (text === undefined) throw new ConfigError([`${file}: not UTF-8 text`]);
    return text;
  } finally {
    closeSync(fd);
  }
}

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
      for (const name of readDirectory(p, abs).sort()) if (manifestName(name)) files.push(join(abs, name));
    } else files.push(abs);
  }
  return files;
}

/** A --config directory's entries; one that cannot be listed (made unreadable, say) is a configuration error naming it. */
function readDirectory(path: string, abs: string): string[] {
  try {
    return readdirSync(abs);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError([`${path}: cannot read the directory: ${e.code === 'EACCES' ? 'permission denied' : e.message}`]);
  }
}

/** Reads and validates every manifest of the given paths; all problems are collected before throwing. */
export function readManifestFiles(paths: string[]): Manifest[] {
  const out: Manifest[] = [];
  const problems: string[] = [];
  for (const file of configFiles(paths)) {
    // Not push(...): spreading a huge array overflows the stack.
    try {
      for (const m of parseManifests(readBounded(file), file)) out.push(m);
    } catch (err) {
      if (err instanceof ConfigError) for (const p of err.problems) problems.push(p);
      else problems.push(`${file}: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out;
}
