// Watching --config files and directories: a change triggers one debounced reload.
import { realpathSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { silentLogger, type Logger } from '../lib/logger.js';
import { isProcessShortage } from '../lib/process-shortage.js';
import { configFiles, MANIFEST_FILE } from './files.js';

/** Kubernetes updates a mounted ConfigMap by swapping its `..data` link: an event that names no manifest. */
const swapped = (name: string) => name.startsWith('..');
const relevant = (name: string) => MANIFEST_FILE.test(name) || swapped(name);

/**
 * What the paths stand for on disk: where each leads (a symlink's target, a directory replaced by another), and each
 * manifest file's target, size and time. A watch follows the directory it was opened on, so a --config directory
 * renamed away and replaced, a symlink to it repointed, or a symlinked file's target edited, raise no event where it
 * listens. A directory's own time is left out: it changes with any file made beside the manifests (a database
 * journal, an editor's lock), which must not reload anything. Undefined when the process could not look (out of
 * descriptors): no answer, rather than a change.
 */
export function configFingerprint(paths: string[]): string | undefined {
  const parts: string[] = [];
  let starved = false;
  const failed = (err: unknown) => {
    // Read as a change, a moment without descriptors reloaded unchanged files and counted a rejected reload nobody made.
    if (isProcessShortage(err)) starved = true;
  };
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch (err) {
      failed(err);
      return '-';
    }
  };
  for (const p of paths) parts.push(`${p}>${real(p)}`);
  try {
    for (const f of configFiles(paths)) {
      const target = real(f);
      const st = target === '-' ? undefined : statSync(target, { throwIfNoEntry: false });
      parts.push(st ? `${f}>${target}:${st.size}:${st.mtimeMs}` : `${f}>-`);
    }
  } catch (err) {
    failed(err);
    parts.push('unreadable');
  }
  return starved ? undefined : parts.join('\n');
}

export interface WatchOptions {
  /**
   * The fingerprint (configFingerprint) of the files the running configuration was read from: a change made since,
   * before the watch began (during a start), triggers at once. Defaults to the paths as they are now.
   */
  since?: string;
  debounceMs?: number;
  pollMs?: number;
  /** Told when a path cannot be watched (once, until it can again). */
  logger?: Logger;
}

/**
 * Watches `paths` (files or directories); calls `onChange` once per burst of changes. Events are the fast path;
 * every `pollMs` the paths' fingerprint is compared too, and a change the watches could not see re-opens them on
 * what the paths lead to now. Returns a stop function.
 */
export function watchConfig(paths: string[], onChange: () => void, { since, debounceMs = 150, pollMs = 1000, logger = silentLogger }: WatchOptions = {}): () => void {
  let watchers: FSWatcher[] = [];
  /** Paths whose watch could not be opened, and was logged: said again only once one opens. */
  const unwatched = new Set<string>();
  let timer: NodeJS.Timeout | null = null;
  let seen = since ?? configFingerprint(paths);
  const trigger = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      // What this reload reads is what the next poll compares with: it triggers only for what changes after.
      seen = configFingerprint(paths) ?? seen;
      onChange();
    }, debounceMs);
  };
  const arm = () => {
    for (const w of watchers) w.close();
    watchers = [];
    for (const p of paths) {
      const abs = resolve(p);
      let dir = abs;
      try {
        // Editors replace files by renaming, which ends a watch on the file itself: watch its directory instead.
        if (!statSync(abs).isDirectory()) dir = dirname(abs);
      } catch {
        continue;
      }
      // In a watched directory only manifest files count: tollgate.db and the analytics spool may live there too
      // (serve --config . in a folder of manifests), and every request's record would otherwise reload the
      // configuration. A file of a mounted ConfigMap changes by the swap of `..data` beside it.
      const file = basename(abs);
      let w: FSWatcher;
      try {
        w = watch(dir, { persistent: false }, (_event, name) => {
          if (!name) trigger();
          else if (dir === abs ? relevant(name.toString()) : name.toString() === file || swapped(name.toString())) trigger();
        });
      } catch (err) {
        // A directory made unreadable (EACCES), removed since the stat (ENOENT), or no inotify watch left (ENOSPC):
        // thrown from the poll's timer, it ended the process. The poll goes on, and tries again each time the
        // fingerprint moves (the directory readable again, a file changed).
        if (!unwatched.has(p)) logger.warn({ path: p, error: (err as Error).message }, 'cannot watch a --config path; changes to it are found by the once-a-second check until it can be');
        unwatched.add(p);
        continue;
      }
      w.on('error', () => {});
      watchers.push(w);
      if (unwatched.delete(p)) logger.info({ path: p }, 'watching a --config path again');
    }
  };
  const check = () => {
    const now = configFingerprint(paths);
    if (now === undefined || now === seen) return;
    seen = now;
    arm();
    trigger();
  };
  arm();
  if (since !== undefined) check();
  const poll = setInterval(check, pollMs);
  poll.unref();
  return () => {
    if (timer) clearTimeout(timer);
    clearInterval(poll);
    for (const w of watchers) w.close();
  };
}
