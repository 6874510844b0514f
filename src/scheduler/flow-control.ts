// Flow control for one pool: requests wait here while the pool is saturated, bounded in number, bytes and
// time, and leave when dispatched, timed out, aborted or rejected — never silently.
import { gatewayError } from '../gateway/errors.js';
import { deadlineAfterIo } from '../lib/with-timeout.js';
import { FairQueue } from '../lib/fair-queue.js';
import type { SchedulerSettings } from './plugin-types.js';
import type { Pick, PickRequest } from './types.js';

/**
 * The retry-after of every refusal for a saturated pool (sheddable, queue full, waited maxWait): saturation is judged
 * anew at each scrape (50 ms apart by default) and each release, so a second later is a fresh chance, and the three
 * refusals mean the same to a client, which should not have to guess for one of them (the OpenAI SDKs honour the header).
 */
export const SATURATED_RETRY: Readonly<Record<string, string>> = Object.freeze({ 'retry-after': '1' });

export type QueueOutcome = 'dispatched' | 'timeout' | 'aborted' | 'rejected' | 'full';

/** What drain() should do next: dispatch the head of the queue, keep waiting, or give up (no endpoint left). */
export type DrainState = 'dispatch' | 'wait' | 'none';

export interface FlowControlOptions {
  /** Read at each enqueue (a getter follows reloads): a request keeps the maxWait it was queued with. */
  settings: SchedulerSettings['flowControl'];
  now: () => number;
  /** A request left the queue (or was refused at its door, outcome 'full') after `seconds`. */
  observe(priority: number, outcome: QueueOutcome, seconds: number): void;
}

class Waiter {
  cancelTimer: () => void = () => {};
  onAbort: (() => void) | undefined;
  constructor(
    readonly req: PickRequest,
    readonly enqueuedAt: number,
    readonly resolve: (pick: Pick) => void,
    readonly reject: (err: unknown) => void,
  ) {}
  get priority(): number {
    return this.req.priority;
  }
  get fairnessId(): string {
    return this.req.fairnessId;
  }
  get bytes(): number {
    return this.req.bytes ?? 0;
  }
}

export class FlowControl {
  readonly #queue = new FairQueue<Waiter>();
  readonly #opts: FlowControlOptions;
  /** The bytes of the requests queued (PickRequest.bytes). */
  #bytes = 0;

  constructor(opts: FlowControlOptions) {
    this.#opts = opts;
  }

  get size(): number {
    return this.#queue.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** The lowest priority queued; undefined when nothing waits. */
  get tailPriority(): number | undefined {
    return this.#queue.tailPriority;
  }

  /** The priority drain() would dispatch next; undefined when nothing waits. */
  get headPriority(): number | undefined {
    return this.#queue.headPriority;
  }

  lengths(): { priority: number; length: number }[] {
    return this.#queue.lengths();
  }

  /**
   * Waits for drain() to dispatch the request; rejects with 503 when the queue is full (maxQueueLength requests, or
   * maxQueueBytes with this one's) or the wait too long.
   */
  enqueue(req: PickRequest): Promise<Pick> {
    const { maxQueueLength, maxQueueBytes, maxWait } = this.#opts.settings;
    const bytes = req.bytes ?? 0;
    const full = () =>
      gatewayError('TG_ERR_QUEUE_FULL', `the flow-control queue is full (${maxQueueLength} requests or ${maxQueueBytes} bytes)`, SATURATED_RETRY);
    // Before any displacement: a request already given up must not turn a waiting one away.
    if (req.signal?.aborted) {
      this.#opts.observe(req.priority, 'aborted', 0);
      return Promise.reject(req.signal.reason);
    }
    const fits = (taken: readonly Waiter[]) => {
      let freed = 0;
      for (const w of taken) freed += w.bytes;
      return this.#queue.size - taken.length < maxQueueLength && this.#bytes - freed + bytes <= maxQueueBytes;
    };
    if (!fits([])) {
      // One larger than the whole budget has no claim: it would empty the queue and still not fit.
      const displaced = bytes > maxQueueBytes ? undefined : this.#queue.displaceUntil(req, fits);
      if (!displaced) {
        this.#opts.observe(req.priority, 'full', 0);
        return Promise.reject(full());
      }
      for (const w of displaced) {
        this.#settle(w, 'full');
        w.reject(full());
      }
    }
    return new Promise<Pick>((resolve, reject) => {
      const w = new Waiter(req, this.#opts.now(), resolve, reject);
      // Judged after the I/O that arrived meanwhile is read: after an event-loop stall, the answers that free a slot
      // (and dispatch this request) would otherwise lose to the timer.
      w.cancelTimer = deadlineAfterIo(maxWait, () => {
        if (this.#queue.remove(w)) {
          this.#settle(w, 'timeout');
          w.reject(gatewayError('TG_ERR_QUEUE_TIMEOUT', `no model server became available within ${maxWait} ms`, SATURATED_RETRY));
        }
      });
      if (req.signal) {
        const signal = req.signal;
        w.onAbort = () => {
          if (this.#queue.remove(w)) {
            this.#settle(w, 'aborted');
            w.reject(signal.reason);
          }
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.#queue.push(w);
      this.#bytes += w.bytes;
    });
  }

  /** Dispatches queued requests, highest priority and fairest first, while `state()` allows. */
  drain(state: () => DrainState, dispatch: (req: PickRequest, queuedMs: number) => Pick): void {
    while (this.#queue.size > 0) {
      const s = state();
      if (s === 'wait') return;
      if (s === 'none') {
        this.rejectAll(gatewayError('TG_ERR_NO_ENDPOINTS', 'no healthy model-server endpoint is left in the pool'));
        return;
      }
      const w = this.#queue.shift()!;
      const queuedMs = this.#leave(w);
      // Recorded once the dispatch is settled: one refused on its way out (a reload took the model elsewhere, the
      // filters left nothing) got a 503, and counted as dispatched it showed refusals as successes.
      let outcome: QueueOutcome = 'dispatched';
      try {
        w.resolve(dispatch(w.req, queuedMs));
      } catch (err) {
        outcome = 'rejected';
        w.reject(err);
      }
      this.#opts.observe(w.priority, outcome, queuedMs / 1000);
    }
  }

  rejectAll(err: Error): void {
    for (let w = this.#queue.shift(); w; w = this.#queue.shift()) {
      this.#settle(w, 'rejected');
      w.reject(err);
    }
  }

  /** Rejects every queued request of priority below `priority` with `err` (outcome 'rejected'). */
  rejectBelow(priority: number, err: Error): void {
    for (const w of this.#queue.takeBelow(priority)) {
      this.#settle(w, 'rejected');
      w.reject(err);
    }
  }

  /** Stops the waiter's clocks and records its wait; returns the wait in ms. */
  #settle(w: Waiter, outcome: QueueOutcome): number {
    const waited = this.#leave(w);
    this.#opts.observe(w.priority, outcome, waited / 1000);
    return waited;
  }

  /** Stops the waiter's clocks and gives back its bytes; returns its wait in ms. */
  #leave(w: Waiter): number {
    w.cancelTimer();
    this.#bytes -= w.bytes;
    if (w.onAbort) w.req.signal!.removeEventListener('abort', w.onAbort);
    return this.#opts.now() - w.enqueuedAt;
  }
}
