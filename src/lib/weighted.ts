// A weighted random draw over a fixed list (target models, rewrite targets, route backends), precomputed once.

export class WeightedDraw<T> {
  readonly #items: T[];
  readonly #cumulative: number[];
  readonly #total: number;

  constructor(entries: { value: T; weight: number }[]) {
    const kept = entries.filter((e) => e.weight > 0);
    if (kept.length === 0) throw new Error('a weighted draw needs at least one entry with weight > 0');
    this.#items = kept.map((e) => e.value);
    let sum = 0;
    this.#cumulative = kept.map((e) => (sum += e.weight));
    this.#total = sum;
  }

  /** `rand` returns a number in [0, 1), like Math.random. */
  pick(rand: () => number = Math.random): T {
    if (this.#items.length === 1) return this.#items[0];
    const x = rand() * this.#total;
    for (let i = 0; i < this.#cumulative.length; i++) if (x < this.#cumulative[i]) return this.#items[i];
    return this.#items[this.#items.length - 1];
  }

  get values(): readonly T[] {
    return this.#items;
  }
}
