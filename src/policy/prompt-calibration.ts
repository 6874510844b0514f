// How the model servers' own prompt counts compare with tollgate's estimate, per target model. Their chat templates
// add tokens to every request (Llama 3.1's system header alone is about 25) and their tokenizers split text their own
// way, so reservations built on tollgate's estimate alone were short, and requests admitted together pushed the
// counter past its limit by the shortfall each (37 requests, 28 % over). The estimate is raised by the shortfall the
// servers show on every recent request, the smallest of the last few: a fixed part from short prompts (where a
// template's tokens dominate) and a part in proportion from long ones (where a tokenizer's way of splitting does).
// The smallest, not the largest: one tenant's request with something the estimate misses (an image) must not raise
// every other tenant's reservations; what every request shows is the servers' way of counting, not a request's.
// The smallest of one is that one, though (a quiet model, a restart): a tenant's 8,000 uncounted tokens raised every
// tenant's estimate by 8,000, refusing their requests. So the correction is bounded by what a server's way of counting
// can add (MAX_FIXED_SHORTFALL, MAX_SHORTFALL_RATIO): one request moves other tenants' estimates by that at most, and
// a way of counting beyond it (a model's template, a tokenizer) is still corrected up to it. A per-tenant correction
// would isolate tenants wholly, but every new key would start uncorrected (the overshoot back for its first requests)
// and tenants × models would need remembering.

/** Prompts estimated at least this long teach the proportional part; shorter ones the fixed part. */
export const LONG_PROMPT_TOKENS = 1000;
/** How many recent requests of each kind (short, long) a model's correction is the smallest shortfall of. */
export const CALIBRATION_WINDOW = 16;
/** A model not heard from for this long starts over: it may have been redeployed with another template. */
export const CALIBRATION_TTL_MS = 10 * 60_000;
/** Models remembered at most (the oldest go first): a route's model names are the client's to choose. */
export const CALIBRATION_MODELS = 1024;
/** The most the fixed part adds: a chat template's own tokens (Llama 3.1's system header is about 25) and then some. */
export const MAX_FIXED_SHORTFALL = 256;
/** The most the proportional part adds: tokenizers of smaller vocabularies split text up to about half as long again. */
export const MAX_SHORTFALL_RATIO = 0.5;

interface Learned {
  /** Shortfalls (tokens) of the last short prompts. */
  fixed: number[];
  /** Shortfalls per estimated token of the last long prompts. */
  ratio: number[];
  at: number;
}

const smallest = (values: readonly number[]) => (values.length === 0 ? 0 : Math.min(...values));

function remember(values: number[], value: number): void {
  values.push(value);
  if (values.length > CALIBRATION_WINDOW) values.shift();
}

export class PromptCalibration {
  readonly #byModel = new Map<string, Learned>();
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** `estimate` raised by what `model`'s servers have counted beyond the estimate on every recent request, bounded. */
  correct(model: string, estimate: number): number {
    const learned = this.#byModel.get(model);
    if (!learned || estimate === 0) return estimate;
    if (this.#now() - learned.at > CALIBRATION_TTL_MS) {
      this.#byModel.delete(model);
      return estimate;
    }
    const ratio = Math.min(smallest(learned.ratio), MAX_SHORTFALL_RATIO);
    return Math.ceil(estimate * (1 + ratio)) + Math.min(smallest(learned.fixed), MAX_FIXED_SHORTFALL);
  }

  /** What a model server counted (`actual`) for a prompt tollgate estimated at `estimate`. */
  observe(model: string, estimate: number, actual: number): void {
    if (!(estimate > 0) || !Number.isFinite(actual)) return;
    const now = this.#now();
    let learned = this.#byModel.get(model);
    if (!learned || now - learned.at > CALIBRATION_TTL_MS) {
      this.#byModel.delete(model);
      if (this.#byModel.size >= CALIBRATION_MODELS) this.#byModel.delete(this.#byModel.keys().next().value!);
      this.#byModel.set(model, (learned = { fixed: [], ratio: [], at: now }));
    }
    learned.at = now;
    // A request the estimate got right (or over) counts too: a zero shortfall keeps the correction at zero.
    const shortfall = Math.max(0, actual - estimate);
    if (estimate >= LONG_PROMPT_TOKENS) remember(learned.ratio, shortfall / estimate);
    else remember(learned.fixed, shortfall);
  }
}
