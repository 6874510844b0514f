// Watching --config files and directories: a change triggers one debounced reload.
import { watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { statSync } from 'node:fs';
import { MANIFEST_FILE } from './files.js';

const relevant = (name: string) => MANIFEST_FILE.test(name) || name.startsWith('..');

/** Watches `paths` (files or directories); calls `onChange` once per burst of changes. Returns a stop function. */
export function watchConfig(paths: string[], onChange: () => void, debounceMs = 150): () => void {
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | null = null;
  const trigger = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      onChange();
    }, debounceMs);
  };
  for (const p of paths) {
    const abs = resolve(p);
    let dir = abs;
    try {
      // Editors replace files by renaming, which ends a watch on the file itself: watch its directory instead.
      if (!statSync(abs).isDirectory()) dir = dirname(abs);
    } catch {
      continue;
    }
    // In a watched directory only manifest files count: tollgate.db and the analytics spool may live there too (serve
    // --config . in a folder of manifests), and every request's record would otherwise reload the configuration.
    // Kubernetes updates a mounted ConfigMap by swapping its `..data` link, an event that names no manifest.
    const w = watch(dir, { persistent: false }, (_event, name) => {
      if (!name) trigger();
      else if (dir === abs ? relevant(name.toString()) : resolve(dir, name.toString()) === abs) trigger();
    });
    w.on('error', () => {});
    watchers.push(w);
  }
  return () => {
    if (timer) clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
