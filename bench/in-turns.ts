// Measuring contenders in turns. On a shared machine throughput drifts by tens of percent within a minute, so
// measuring each contender once, one after the other, ranks them by when they ran as much as by what they cost.
// Each contender is measured in several short rounds instead, every round visiting all of them, and ratios are
// taken between measurements of the same round before their median is taken across rounds.

/** The middle value; with an even count, the mean of the two middle ones. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Calls `measure` once per contender per round and returns each contender's measurements in round order. Each
 * round starts one contender further along, and every other round goes the other way round, so neither the first
 * place nor the contender measured just before (the one whose load the machine is still settling from) stays the
 * same.
 * @example
 * const rps = await inTurns(['a', 'b'], 3, (name) => load(name)); // [[a1, a2, a3], [b1, b2, b3]]
 */
export async function inTurns<T, M>(contenders: readonly T[], rounds: number, measure: (contender: T, round: number) => Promise<M>): Promise<M[][]> {
  const out: M[][] = contenders.map(() => []);
  const forward = contenders.map((_, i) => i);
  const backward = [...forward].reverse();
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? forward : backward;
    for (let k = 0; k < contenders.length; k++) {
      const i = order[(k + round) % contenders.length];
      out[i].push(await measure(contenders[i], round));
    }
  }
  return out;
}

/** Largest over smallest: 1 when every round measured the same. */
export function spread(values: readonly number[]): number {
  return Math.max(...values) / Math.min(...values);
}

/** The median over rounds of `a[r] / b[r]`: two contenders compared within each round. */
export function medianRatio(a: readonly number[], b: readonly number[]): number {
  return median(a.map((x, r) => x / b[r]));
}

/** The median over rounds of `a[r] - b[r]`. */
export function medianDifference(a: readonly number[], b: readonly number[]): number {
  return median(a.map((x, r) => x - b[r]));
}
