// Fault injection: random errors and latency spikes, forced error statuses, and a server that dies (and comes back).
import { seededRandom } from './hash.js';

export interface FaultOptions {
  /** Fraction of inference requests answered 500. */
  errorRate: number;
  /** Fraction of inference requests delayed by latencySpikeMs (simulated, divided by the time scale). */
  latencySpikeRate: number;
  latencySpikeMs: number;
  /** The server dies when inference request dieAfter + 1 arrives. */
  dieAfter?: number;
  /** Once dead, answer requests but cut every stream after this many chunks (and drop non-streamed answers). */
  dieMidStream?: number;
}

/**
 * 'refuse': every connection is destroyed on arrival; { cutAfterChunks }: requests are taken but their
 * responses are cut (streams after that many chunks).
 */
export type DeadMode = 'refuse' | { cutAfterChunks: number };

export type Verdict =
  | { kind: 'serve'; delayMs: number }
  | { kind: 'fail'; status: number }
  | { kind: 'die' };

export class Faults {
  opts: FaultOptions;
  dead: DeadMode | null = null;
  /** Inference requests since start (or since the last revive). */
  requests = 0;
  #rand: () => number;
  #forced: { count: number; status: number } = { count: 0, status: 503 };

  constructor(opts: FaultOptions, seed: number) {
    this.opts = opts;
    this.#rand = seededRandom(seed ^ 0x2545f491);
  }

  /** What happens to the next inference request. */
  next(): Verdict {
    this.requests++;
    const { dieAfter } = this.opts;
    if (this.dead === null && dieAfter !== undefined && this.requests > dieAfter) {
      return { kind: 'die' };
    }
    if (this.#forced.count > 0) {
      this.#forced.count--;
      return { kind: 'fail', status: this.#forced.status };
    }
    if (this.opts.errorRate > 0 && this.#rand() < this.opts.errorRate) return { kind: 'fail', status: 500 };
    const spike = this.opts.latencySpikeRate > 0 && this.#rand() < this.opts.latencySpikeRate;
    return { kind: 'serve', delayMs: spike ? this.opts.latencySpikeMs : 0 };
  }

  /** The mode a dying server enters (die-after, or kill() without arguments follows the configured one). */
  deathMode(cutAfterChunks = this.opts.dieMidStream): DeadMode {
    return cutAfterChunks === undefined ? 'refuse' : { cutAfterChunks };
  }

  failNext(count: number, status: number): void {
    this.#forced = { count, status };
  }

  revive(): void {
    this.dead = null;
    this.requests = 0;
  }
}
