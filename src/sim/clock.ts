// Time as the simulator sees it: real by default, replaceable by a manual clock in unit tests.

export interface Clock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Runs fn after ms milliseconds; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    // setTimeout cannot wait less than 1 ms; setImmediate keeps zero-delay wake-ups from costing a millisecond.
    if (ms <= 0) {
      const handle = setImmediate(fn);
      return () => clearImmediate(handle);
    }
    const handle = setTimeout(fn, ms);
    return () => clearTimeout(handle);
  },
};
