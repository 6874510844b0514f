// The last decisions of a pool, for the admin API's fleet view: a ring of preallocated records, so logging a decision allocates nothing.

export interface Decision {
  /** Epoch ms. */
  at: number;
  model: string;
  endpoint: string;
  /** Per scorer, in the pipeline's scorer order; NaN where a scorer abstained. */
  scores: Float64Array;
  total: number;
  priority: number;
  queuedMs: number;
}

export class DecisionLog {
  readonly #ring: Decision[];
  #next = 0;
  #count = 0;

  constructor(capacity: number, scorers: number) {
    this.#ring = Array.from({ length: capacity }, () => ({
      at: 0,
      model: '',
      endpoint: '',
      scores: new Float64Array(scorers),
      total: 0,
      priority: 0,
      queuedMs: 0,
    }));
  }

  record(at: number, model: string, endpoint: string, scores: Float64Array, total: number, priority: number, queuedMs: number): void {
    const d = this.#ring[this.#next];
    d.at = at;
    d.model = model;
    d.endpoint = endpoint;
    for (let k = 0; k < d.scores.length; k++) d.scores[k] = scores[k];
    d.total = total;
    d.priority = priority;
    d.queuedMs = queuedMs;
    this.#next = (this.#next + 1) % this.#ring.length;
    if (this.#count < this.#ring.length) this.#count++;
  }

  /** Copies of the recorded decisions, newest first. */
  recent(): Decision[] {
    const out: Decision[] = [];
    for (let i = 1; i <= this.#count; i++) {
      const d = this.#ring[(this.#next - i + this.#ring.length) % this.#ring.length];
      out.push({ ...d, scores: d.scores.slice() });
    }
    return out;
  }
}
