// A pick request that tells the flow-control queue when its client goes away, paying for that only if it queues, and
// holds no more of the prompt than the picker reads.
import type { ServerResponse } from 'node:http';
import type { PoolConfig } from '../config/runtime-config.js';
import { promptCharsRead, promptPrefix } from '../scheduler/prompt-prefix.js';
import type { PickRequest } from '../scheduler/types.js';
import { gatewayError } from './errors.js';

/** Calls `gone` once if the client goes away before its answer is complete (at once if it already has). */
export type OnClientGone = (gone: () => void) => void;

/** For a request answered on `res`. */
export function onResponseGone(res: ServerResponse): OnClientGone {
  return (gone) => {
    if (res.destroyed) gone();
    else res.once('close', () => res.writableFinished || gone());
  };
}

/**
 * The endpoint picker reads `signal` only for a request that has to wait in its flow-control queue, so the
 * AbortController and the watch on the client behind it are made then, not for every request. A client that goes
 * away while its request waits takes it out of the queue, instead of it being sent to a model server later with no
 * one left to answer. Without `onGone` (a caller that cannot tell) there is no signal.
 */
export class ClientPickRequest implements PickRequest {
  readonly #onGone: OnClientGone | undefined;
  #controller: AbortController | undefined;
  /** Only what the pool's picker reads of the prompt: a queued request holds its body already, not a third copy. */
  readonly prompt: string;
  readonly promptChars: number;

  constructor(
    readonly pool: PoolConfig,
    readonly targetModel: string,
    prompt: string,
    /** The request body's size (RequestContext.bytesIn), for the queue's byte budget. */
    readonly bytes: number,
    readonly priority: number,
    readonly fairnessId: string,
    readonly subset: ReadonlySet<string> | undefined,
    onGone: OnClientGone | undefined,
  ) {
    this.prompt = promptPrefix(prompt, promptCharsRead(pool));
    this.promptChars = prompt.length;
    this.#onGone = onGone;
  }

  get signal(): AbortSignal | undefined {
    if (this.#controller) return this.#controller.signal;
    if (!this.#onGone) return undefined;
    const controller = (this.#controller = new AbortController());
    // A client's doing, as a body cut short is (body.ts): not an error of the gateway's, nothing to log.
    this.#onGone(() => controller.abort(gatewayError('TG_ERR_CLIENT_CLOSED', 'The client went away while its request waited for a model server')));
    return controller.signal;
  }
}
