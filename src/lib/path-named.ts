// A path as messages name it.
import { isAbsolute, resolve } from 'node:path';

/** A relative path with where it leads from this process's working directory (the defaults are relative). */
export function pathNamed(path: string): string {
  return isAbsolute(path) ? path : `${path} (${resolve(path)})`;
}
