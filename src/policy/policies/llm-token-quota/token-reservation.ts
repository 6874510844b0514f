// A token reservation held until the exchange is over, then reconciled to the real usage.
import type { CountOn } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import type { Usage } from '../../../gateway/usage.js';
import type { CounterGuard } from '../../counter-guard.js';
import type { Settler } from '../../types.js';
import { isSuccess } from '../../../gateway/http-status.js';

function counted(usage: Usage, countOn: CountOn): number {
  if (countOn === 'input') return usage.inputTokens;
  if (countOn === 'output') return usage.outputTokens;
  return usage.inputTokens + usage.outputTokens;
}


/**
 * A model server accepted the request (2xx) and the client got that answer without usage tollgate could read or
 * estimate (a JSON answer that reports none, a compressed stream; a stream cut before its usage chunk is estimated),
 * or Envoy took it on without showing the answer. Not when no model server accepted it (none reached, a
 * 4xx, 429 or 5xx), nor when the client got the gateway's error instead of the answer (a 2xx head, then the model
 * server died or stalled before any byte went out): nothing was delivered, and an SDK retrying would pay again.
 */
function mayHaveProduced(ctx: RequestContext): boolean {
  return ctx.answerUnseen === true || (isSuccess(ctx.upstreamStatus) && isSuccess(ctx.status));
}

export class TokenReservation implements Settler {
  readonly #counters: CounterGuard;
  readonly #key: string;
  readonly #windowMs: number;
  readonly #reservedAt: number;
  readonly #countOn: CountOn;
  readonly #reserved: number;
  readonly #onUsage: ((usage: Usage) => void) | undefined;
  readonly #release: (() => void) | undefined;

  /**
   * `onUsage` hears the usage the model server reported, when it did (PromptCalibration learns from it); `release`
   * is called once the request is over (TokensInFlight).
   */
  constructor(counters: CounterGuard, key: string, windowMs: number, reservedAt: number, countOn: CountOn, reserved: number, onUsage?: (usage: Usage) => void, release?: () => void) {
    this.#counters = counters;
    this.#key = key;
    this.#windowMs = windowMs;
    this.#reservedAt = reservedAt;
    this.#countOn = countOn;
    this.#reserved = reserved;
    this.#onUsage = onUsage;
    this.#release = release;
  }

  /**
   * With usage: the counter moves by actual − reserved, the usage tollgate estimated for a stream cut before its
   * usage chunk or a request whose client hung up before its answer included (estimated-usage.ts: the usage record
   * carries the same figures). Without: a request that may have produced tokens keeps its reservation (Envoy took it
   * on without showing the answer, a compressed stream); any other gives everything back.
   */
  settle(ctx: RequestContext): Promise<void> {
    this.#release?.();
    let actual: number;
    if (ctx.usage) {
      actual = counted(ctx.usage, this.#countOn);
      // Calibration learns how servers count prompts: tollgate's own estimate would teach it nothing.
      if (!ctx.usage.estimated) this.#onUsage?.(ctx.usage);
    } else if (!mayHaveProduced(ctx)) actual = 0;
    else return Promise.resolve();
    const delta = actual - this.#reserved;
    if (delta === 0) return Promise.resolve();
    // The reservation's own time, so the correction lands in the window that holds the reservation.
    return this.#counters.settle((c) => c.adjust(this.#key, delta, this.#windowMs, this.#reservedAt));
  }
}
