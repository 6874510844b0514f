// Retry delays for an unreachable database: exponential, capped, with jitter so replicas do not retry in step.

const BASE_MS = 250;
const CAP_MS = 30_000;

/** "Equal jitter": half the exponential delay fixed, half random. failures ≥ 1. */
export function backoffDelay(failures: number, random: () => number = Math.random): number {
  const d = Math.min(CAP_MS, BASE_MS * 2 ** Math.min(failures - 1, 20));
  return d / 2 + random() * (d / 2);
}
