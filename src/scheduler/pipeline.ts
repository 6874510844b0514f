// One compiled scheduling profile run per decision: filters → weighted scorers → picker → pre-request hooks.
// The engine, not each plugin, clamps scores, applies weights, stops when nothing is left and times every plugin.
import type { EndpointState } from './endpoint-state.js';
import type { CycleContext, Filter, Picker, Plugin, Scorer } from './plugin-types.js';

export interface WeightedScorer {
  scorer: Scorer;
  weight: number;
}

export interface PipelineParts {
  filters: Filter[];
  scorers: WeightedScorer[];
  picker: Picker;
}

/** Receives a plugin's time for one decision, in seconds. */
export type PluginTimer = (seconds: number) => void;

export interface PipelineDescription {
  filters: { name: string; type: string }[];
  scorers: { name: string; type: string; weight: number }[];
  picker: { name: string; type: string };
}

export class Pipeline {
  readonly #filters: Filter[];
  readonly #scorers: Scorer[];
  readonly #weights: Float64Array;
  readonly #picker: Picker;
  /** Every plugin once, in run order; #elapsed and #timers share its indexes. */
  readonly #plugins: Plugin[];
  readonly #timers: PluginTimer[];
  readonly #elapsed: Float64Array;
  readonly #hooks: { plugin: Plugin; at: number }[];
  readonly #fallbackHooks: Plugin[];
  #scores: Float64Array[];
  #totals: Float64Array;

  constructor(parts: PipelineParts, timerFor: (plugin: Plugin) => PluginTimer) {
    this.#filters = parts.filters;
    this.#scorers = parts.scorers.map((s) => s.scorer);
    this.#weights = Float64Array.from(parts.scorers, (s) => s.weight);
    this.#picker = parts.picker;
    this.#plugins = [...this.#filters, ...this.#scorers, this.#picker];
    this.#timers = this.#plugins.map(timerFor);
    this.#elapsed = new Float64Array(this.#plugins.length);
    this.#hooks = this.#plugins.flatMap((plugin, at) => (plugin.preRequest ? [{ plugin, at }] : []));
    this.#fallbackHooks = this.#plugins.filter((plugin) => plugin.fallback);
    this.#scores = this.#scorers.map(() => new Float64Array(0));
    this.#totals = new Float64Array(0);
  }

  get scorerNames(): string[] {
    return this.#scorers.map((s) => s.name);
  }

  describe(): PipelineDescription {
    return {
      filters: this.#filters.map((f) => ({ name: f.name, type: f.type })),
      scorers: this.#scorers.map((s, k) => ({ name: s.name, type: s.type, weight: this.#weights[k] })),
      picker: { name: this.#picker.name, type: this.#picker.type },
    };
  }

  /**
   * The candidates in order of preference, or null when the filters left none. Each endpoint's
   * lastScores/lastTotal are updated (for the fleet view), and the chosen one is passed to preRequest hooks.
   */
  run(ctx: CycleContext, endpoints: readonly EndpointState[]): EndpointState[] | null {
    const elapsed = this.#elapsed;
    elapsed.fill(0);
    let p = 0;
    let candidates = endpoints;
    let t = performance.now();
    for (const filter of this.#filters) {
      candidates = filter.filter(ctx, candidates);
      t = lap(elapsed, p++, t);
      if (candidates.length === 0) {
        this.#report();
        return null;
      }
    }
    const n = candidates.length;
    if (this.#totals.length < n) this.#grow(n);
    const totals = this.#totals;
    totals.fill(0, 0, n);
    const k = this.#scorers.length;
    for (let i = 0; i < n; i++) if (candidates[i].lastScores.length !== k) candidates[i].lastScores = new Float64Array(k);
    for (let s = 0; s < k; s++) {
      const out = this.#scores[s];
      const scored = this.#scorers[s].score(ctx, candidates, out);
      t = lap(elapsed, p++, t);
      const w = this.#weights[s];
      for (let i = 0; i < n; i++) {
        if (!scored) {
          candidates[i].lastScores[s] = NaN;
          continue;
        }
        const raw = out[i];
        const v = raw > 0 ? (raw < 1 ? raw : 1) : 0; // NaN lands on 0 too
        candidates[i].lastScores[s] = v;
        totals[i] += w * v;
      }
    }
    for (let i = 0; i < n; i++) candidates[i].lastTotal = totals[i];
    const ordered = this.#picker.pick(ctx, candidates, totals);
    t = lap(elapsed, p, t);
    for (const hook of this.#hooks) {
      hook.plugin.preRequest!(ctx, ordered[0]);
      t = lap(elapsed, hook.at, t);
    }
    this.#report();
    return ordered;
  }

  /** The candidates the filters keep, without scoring or timing (fallbacks beyond the scored ones). */
  filterOnly(ctx: CycleContext, endpoints: readonly EndpointState[]): readonly EndpointState[] {
    let candidates = endpoints;
    for (const filter of this.#filters) {
      if (candidates.length === 0) break;
      candidates = filter.filter(ctx, candidates);
    }
    return candidates;
  }

  /** The request of `ctx` went on to `endpoint`, a fallback of its decision (rare: not timed). */
  fallback(ctx: CycleContext, endpoint: EndpointState): void {
    for (const plugin of this.#fallbackHooks) plugin.fallback!(ctx, endpoint);
  }

  /** The endpoint left the pool. */
  forget(endpoint: EndpointState): void {
    for (const plugin of this.#plugins) plugin.forget?.(endpoint);
  }

  #report(): void {
    for (let i = 0; i < this.#timers.length; i++) if (this.#elapsed[i] > 0) this.#timers[i](this.#elapsed[i] / 1000);
  }

  #grow(n: number): void {
    const size = Math.max(n, this.#totals.length * 2, 16);
    this.#totals = new Float64Array(size);
    this.#scores = this.#scores.map(() => new Float64Array(size));
  }
}

/** Adds the time since `t` to plugin `at`'s total; returns now. */
function lap(elapsed: Float64Array, at: number, t: number): number {
  const now = performance.now();
  elapsed[at] += now - t;
  return now;
}
