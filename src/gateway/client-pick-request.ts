// A pick request that tells the flow-control queue when its client goes away, paying for that only if it queues, and
// holds no more of the prompt than the picker reads; and the watch on a client's connection that tells every request
// on it, queued or proxied, that its client is gone.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { PoolConfig } from '../config/runtime-config.js';
import { promptCharsRead, promptPrefix } from '../scheduler/prompt-prefix.js';
import type { PickRequest } from '../scheduler/types.js';
import { gatewayError } from './errors.js';

/** Calls `gone` once if the client goes away before its answer is complete (at once if it already has). */
export type OnClientGone = (gone: () => void) => void;

/** Per client connection, whom its close is to tell: one listener on the socket, however many requests it carries. */
const watchers = new WeakMap<Socket, Set<() => void>>();

/**
 * Calls `gone` when the client's connection closes (at once if it has), until `unwatchConnection`. The response's
 * own 'close' is not enough: node:http gives a pipelined response the socket only once the one ahead of it is
 * finished, so one still waiting its turn when the client hangs up never hears of it.
 */
export function watchConnection(socket: Socket, gone: () => void): void {
  if (socket.destroyed) return gone();
  let watching = watchers.get(socket);
  if (!watching) {
    const all = (watching = new Set());
    watchers.set(socket, all);
    socket.once('close', () => {
      watchers.delete(socket);
      for (const tell of all) tell();
    });
  }
  watching.add(gone);
}

/** Stops the watch; false when there was none left (the close has been told). */
export function unwatchConnection(socket: Socket, gone: () => void): boolean {
  return watchers.get(socket)?.delete(gone) ?? false;
}

/** For a request answered on `res`. */
export function onResponseGone(res: ServerResponse): OnClientGone {
  return (gone) => {
    if (res.destroyed) return gone();
    const socket = res.req.socket;
    watchConnection(socket, gone);
    // Over with the answer (a kept-alive connection's watch does not collect every request it carried); the
    // response may hear of the connection's close before its watch does.
    res.once('close', () => {
      if (unwatchConnection(socket, gone) && !res.writableFinished) gone();
    });
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
