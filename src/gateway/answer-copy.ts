// An observing response flow's copy of a non-streamed answer (a cache filling): the answer goes on to the client as it
// comes instead of being held, and the flow reads the copy once the answer is complete. An answer larger than the flow
// reads is not copied: holding it whole made every answer over the body limit a 502 (an 11.7 MB batch of embeddings)
// for a cache that would never store it.
import type { ResponseFlow } from './hooks.js';

export class AnswerCopy {
  readonly #flow: ResponseFlow;
  readonly #limit: number;
  #chunks: Buffer[] | null = [];
  #bytes = 0;

  /** `flow` observes and has a `body`; the copy is at most its observeLimit and `maxBodyBytes`. */
  constructor(flow: ResponseFlow, maxBodyBytes: number) {
    this.#flow = flow;
    this.#limit = Math.min(flow.observeLimit ?? maxBodyBytes, maxBodyBytes);
  }

  push(chunk: Buffer): void {
    if (!this.#chunks) return;
    this.#bytes += chunk.length;
    if (this.#bytes <= this.#limit) this.#chunks.push(chunk);
    else this.#chunks = null;
  }

  /** The answer is complete: the flow reads the copy, if one was kept. */
  end(status: number): void {
    const chunks = this.#chunks;
    this.#chunks = null;
    if (!chunks) return;
    // The answer is the client's already: an observer that fails can change nothing of it, nor end the exchange.
    try {
      const read = this.#flow.body!(Buffer.concat(chunks, this.#bytes), status);
      if (read instanceof Promise) read.catch(() => {});
    } catch {}
  }
}
