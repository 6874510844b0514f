// A periodic sweep of expired entries for a store held weakly (cache-resources.ts lets the garbage collector decide
// when a policy's store is no longer used): a timer that held the store would keep it, and every entry in it, for
// the process's life.

/** How often the in-memory caches drop expired entries that no read came for. */
export const SWEEP_INTERVAL_MS = 30_000;

/**
 * Calls `target.sweep()` every `everyMs` while `target` lives; once it is collected the timer ends itself. Unref'd:
 * a sweep never keeps a finished process alive. Clear the returned timer when the target closes.
 */
export function sweepWhileAlive(target: { sweep(): void }, everyMs = SWEEP_INTERVAL_MS): NodeJS.Timeout {
  const ref = new WeakRef(target);
  const timer: NodeJS.Timeout = setInterval(() => {
    const live = ref.deref();
    if (live) live.sweep();
    else clearInterval(timer);
  }, everyMs).unref();
  return timer;
}
