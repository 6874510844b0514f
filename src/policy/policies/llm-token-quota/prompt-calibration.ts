// How the model servers' own prompt counts compare with tollgate's estimate, per target model. Their chat templates
// add tokens (Llama 3.1's system header alone is about 25) and their tokenizers split text their own way, so a
// reservation built on tollgate's estimate alone was short, and requests admitted together pushed the counter past
// its limit by the shortfall each (37 requests, 28 % over). The estimate is raised by the largest shortfall the
// servers have shown lately: a fixed part, from short prompts (where a template's tokens dominate), and a part in
// proportion, from long ones (where a tokenizer's way of splitting does).

/** Prompts estimated at least this long teach the proportional part; shorter ones the fixed part. */
export const LONG_PROMPT_TOKENS = 1000;
/** What was learned is kept for one to two of these: a model redeployed with another template is learned again. */
export const CALIBRATION_PERIOD_MS = 5 * 60_000;

interface Shortfall {
  /** Tokens the servers counted beyond the estimate of a short prompt. */
  fixed: number;
  /** The same per estimated token, of a long prompt. */
  ratio: number;
}

class Learned {
  current: Shortfall = { fixed: 0, ratio: 0 };
  previous: Shortfall = { fixed: 0, ratio: 0 };
  since: number;

  constructor(now: number) {
    this.since = now;
  }

  /** Starts a new period once the current one is over; the largest of the two periods' shortfalls is what counts. */
  roll(now: number): void {
    if (now - this.since < CALIBRATION_PERIOD_MS) return;
    this.previous = now - this.since < 2 * CALIBRATION_PERIOD_MS ? this.current : { fixed: 0, ratio: 0 };
    this.current = { fixed: 0, ratio: 0 };
    this.since = now;
  }
}

export class PromptCalibration {
  readonly #byModel = new Map<string, Learned>();
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** `estimate` raised to what `model`'s servers have lately counted for prompts like it (never below it). */
  correct(model: string, estimate: number): number {
    const learned = this.#byModel.get(model);
    if (!learned || estimate === 0) return estimate;
    learned.roll(this.#now());
    const fixed = Math.max(learned.current.fixed, learned.previous.fixed);
    const ratio = Math.max(learned.current.ratio, learned.previous.ratio);
    return Math.ceil(estimate * (1 + ratio)) + fixed;
  }

  /** What a model server counted (`actual`) for a prompt tollgate estimated at `estimate`. */
  observe(model: string, estimate: number, actual: number): void {
    const shortfall = actual - estimate;
    if (estimate <= 0 || !(shortfall > 0)) return;
    let learned = this.#byModel.get(model);
    if (!learned) this.#byModel.set(model, (learned = new Learned(this.#now())));
    learned.roll(this.#now());
    const c = learned.current;
    if (estimate >= LONG_PROMPT_TOKENS) c.ratio = Math.max(c.ratio, shortfall / estimate);
    else c.fixed = Math.max(c.fixed, shortfall);
  }
}
