// Deadlines on I/O that measure the other side, not this process: after the event loop stalls (a long GC, a host
// short of CPU), libuv runs the timers that fell due before it polls the sockets, so an answer already waiting in a
// socket would lose to its own deadline. Under load that turned one stall into a burst of refusals (a counter store
// "timing out" on answers it had sent in a millisecond).

/** The rejection of withTimeout, so callers can tell a deadline from the work's own failure. */
export class TimeoutError extends Error {}

/**
 * Calls `onExpired` once `ms` has passed and the I/O that arrived meanwhile has been read (setImmediate runs after
 * the poll phase that follows the timers). Returns the cancel function.
 */
export function deadlineAfterIo(ms: number, onExpired: () => void): () => void {
  let immediate: NodeJS.Immediate | undefined;
  const timer = setTimeout(() => {
    immediate = setImmediate(onExpired);
  }, ms);
  return () => {
    clearTimeout(timer);
    if (immediate) clearImmediate(immediate);
  };
}

/**
 * `work`, or a TimeoutError "`what` did not finish within `ms` ms" once `ms` has passed. The work cannot be
 * cancelled: it runs on, and whatever it ends with after the deadline is dropped (listened to, so a late rejection
 * is not unhandled). With `fromTurnEnd`, `ms` count from the end of this event-loop turn (its check phase) rather
 * than from now: for work sent only then (Redis commands held to the end of the turn, redis-coalesce.ts and
 * counters/redis-batch.ts), so that this process stalling before they leave is not counted against them.
 */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string, opts: { fromTurnEnd?: boolean } = {}): Promise<T> {
  // One promise and no race: this wraps every remote counter-store call (the policy's deadline) and Redis command.
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const expire = () => reject(new TimeoutError(`${what} did not finish within ${ms} ms`));
    let cancel: () => void;
    if (opts.fromTurnEnd) {
      let cancelDeadline = (): void => {};
      const start = setImmediate(() => {
        if (!settled) cancelDeadline = deadlineAfterIo(ms, expire);
      });
      cancel = () => {
        clearImmediate(start);
        cancelDeadline();
      };
    } else {
      cancel = deadlineAfterIo(ms, expire);
    }
    work.then(
      (value) => {
        settled = true;
        cancel();
        resolve(value);
      },
      (err: unknown) => {
        settled = true;
        cancel();
        reject(err);
      },
    );
  });
}

/**
 * `work(progress)`, or a TimeoutError once `ms` has passed without a call of `progress`: for work whose length grows
 * with the data it reads (a table in pages), which a bound on the whole would fail for good once the data outgrew it.
 */
export function withStallTimeout<T>(work: (progress: () => void) => Promise<T>, ms: number, what: string): Promise<T> {
  let settled = false;
  let cancel = (): void => {};
  let expire!: (err: TimeoutError) => void;
  const stalled = new Promise<never>((_, reject) => (expire = reject));
  const progress = (): void => {
    if (settled) return;
    cancel();
    cancel = deadlineAfterIo(ms, () => expire(new TimeoutError(`${what} made no progress for ${ms} ms`)));
  };
  progress();
  return Promise.race([work(progress), stalled]).finally(() => {
    settled = true;
    cancel();
  });
}
