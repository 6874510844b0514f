// A pick request that tells the flow-control queue when its client hangs up, paying for that only if it queues.
import type { ServerResponse } from 'node:http';
import type { PoolConfig } from '../config/runtime-config.js';
import type { PickRequest } from '../scheduler/types.js';

/**
 * The endpoint picker reads `signal` only for a request that has to wait in its flow-control queue, so the
 * AbortController and the listener on the response are made then, not for every request. A client that hangs up
 * while its request waits takes it out of the queue, instead of it being sent to a model server later with no one
 * left to answer.
 */
export class ClientPickRequest implements PickRequest {
  readonly #res: ServerResponse;
  #controller: AbortController | undefined;

  constructor(
    readonly pool: PoolConfig,
    readonly targetModel: string,
    readonly prompt: string,
    readonly priority: number,
    readonly fairnessId: string,
    readonly subset: ReadonlySet<string> | undefined,
    res: ServerResponse,
  ) {
    this.#res = res;
  }

  get signal(): AbortSignal {
    if (this.#controller) return this.#controller.signal;
    const controller = (this.#controller = new AbortController());
    const res = this.#res;
    const gone = () => controller.abort(new Error('the client went away while its request waited for a model server'));
    if (res.destroyed) gone();
    else res.once('close', () => res.writableFinished || gone());
    return controller.signal;
  }
}
