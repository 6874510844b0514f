// The simulated server's store of Responses API answers, as vLLM keeps them (in its own memory, per server): what
// `previous_response_id` continues, and what GET, DELETE and input_items of /v1/responses/{id} read.
import type { ChatMessage } from '../lib/tokenizer.js';

export interface StoredAnswer {
  /** The response object as it was answered (status completed or incomplete). */
  response: { id: string } & Record<string, unknown>;
  /** The conversation up to and including this answer, without instructions (a follow-up does not inherit them). */
  conversation: ChatMessage[];
  /** The input items of the request that made it, as input_items lists them. */
  inputItems: unknown[];
}

/** Bounded as a real server's memory is: the oldest answers are forgotten first. */
export class SimResponseStore {
  readonly #max: number;
  readonly #answers = new Map<string, StoredAnswer>();

  constructor(max = 10_000) {
    this.#max = max;
  }

  put(answer: StoredAnswer): void {
    this.#answers.set(answer.response.id, answer);
    if (this.#answers.size > this.#max) this.#answers.delete(this.#answers.keys().next().value!);
  }

  get(id: string): StoredAnswer | undefined {
    return this.#answers.get(id);
  }

  delete(id: string): boolean {
    return this.#answers.delete(id);
  }
}
