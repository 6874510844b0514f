// A deadline on work that cannot be cancelled: the work runs on, and whatever it ends with after the deadline is
// dropped (Promise.race listens to it, so a late rejection is not unhandled).

/** `work`, or a rejection "`what` did not finish within `ms` ms" once `ms` has passed. */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
