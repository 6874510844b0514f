// A token reservation held until the exchange is over, then reconciled to the real usage.
import type { CountOn } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import type { Usage } from '../../../gateway/usage.js';
import type { CounterGuard } from '../../counter-guard.js';
import type { HoldId } from '../../../store/counters/counter-store.js';
import type { Settler } from '../../types.js';
import type { TokensInFlight } from '../../tokens-in-flight.js';
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

/** Where a reservation was made: its counter, its id there, and when that counter's window ends. */
export interface ReservedOn {
  key: string;
  id: HoldId;
  endMs: number;
}

export class TokenReservation implements Settler {
  readonly #counters: CounterGuard;
  readonly #inFlight: TokensInFlight;
  readonly #on: ReservedOn;
  readonly #countOn: CountOn;
  readonly #reserved: number;
  readonly #onUsage: ((usage: Usage) => void) | undefined;

  /**
   * Settled through `inFlight`, which keeps a settlement the store cannot take and tries it again; `onUsage` hears the
   * usage the model server reported, when it did (PromptCalibration learns from it).
   */
  constructor(counters: CounterGuard, inFlight: TokensInFlight, on: ReservedOn, countOn: CountOn, reserved: number, onUsage?: (usage: Usage) => void) {
    this.#counters = counters;
    this.#inFlight = inFlight;
    this.#on = on;
    this.#countOn = countOn;
    this.#reserved = reserved;
    this.#onUsage = onUsage;
  }

  /**
   * With usage: the counter moves by actual − reserved, the usage tollgate estimated for a stream cut before its
   * usage chunk or a request whose client hung up before its answer included (estimated-usage.ts: the usage record
   * carries the same figures). Without: a request that may have produced tokens keeps its reservation (Envoy took it
   * on without showing the answer, a compressed stream); any other gives everything back. Settled even when nothing
   * moves: that ends the reservation's hold, on which other replicas' refusals say when to come back.
   */
  settle(ctx: RequestContext): void | Promise<void> {
    let actual: number;
    if (ctx.usage) {
      actual = counted(ctx.usage, this.#countOn);
      // Calibration learns how servers count prompts: tollgate's own estimate would teach it nothing.
      if (!ctx.usage.estimated) this.#onUsage?.(ctx.usage);
    } else if (!mayHaveProduced(ctx)) actual = 0;
    else actual = this.#reserved;
    const { key, id, endMs } = this.#on;
    const delta = actual - this.#reserved;
    return this.#inFlight.settle(this.#counters, (c) => c.settle(key, id, delta), endMs);
  }
}
