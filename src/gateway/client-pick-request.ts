// A pick request that tells the flow-control queue when its client goes away, paying for that only if it queues,
// holds no more of the prompt than the picker reads, and resolves its model again when a reload changed its pool while
// it waited; and the watch on a client's connection that tells every request on it, queued or proxied, that its
// client is gone.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { PoolConfig, RuntimeConfig } from '../config/runtime-config.js';
import { clipName } from '../lib/clip-name.js';
import { promptCharsRead, promptPrefix } from '../scheduler/prompt-prefix.js';
import type { PickRequest } from '../scheduler/types.js';
import type { RequestContext } from './context.js';
import { GatewayError, gatewayError } from './errors.js';
import { resolveModel } from './resolve-model.js';

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
  readonly #ctx: RequestContext;
  readonly #onGone: OnClientGone | undefined;
  /** The data plane, whose configuration in force a request queued across a reload is resolved again in. */
  readonly #inForce: { readonly config: RuntimeConfig };
  #controller: AbortController | undefined;
  pool: PoolConfig;
  targetModel: string;
  priority: number;
  /** Only what the pool's picker reads of the prompt: a queued request holds its body already, not a third copy. */
  readonly prompt: string;
  readonly promptChars: number;
  /** The request body's size (RequestContext.bytesIn), for the queue's byte budget. */
  readonly bytes: number;
  readonly fairnessId: string;
  readonly subset: ReadonlySet<string> | undefined;

  /** For `ctx` once its model is resolved (resolveModel), with the serialized `prompt`. */
  constructor(ctx: RequestContext, prompt: string, onGone: OnClientGone | undefined, inForce: { readonly config: RuntimeConfig }) {
    this.#ctx = ctx;
    this.#onGone = onGone;
    this.#inForce = inForce;
    this.pool = ctx.modelConfig!.pool;
    this.targetModel = ctx.targetModel!;
    this.priority = ctx.priority;
    this.prompt = promptPrefix(prompt, promptCharsRead(this.pool));
    this.promptChars = prompt.length;
    this.bytes = ctx.bytesIn;
    this.fairnessId = ctx.fairnessId;
    this.subset = ctx.subset;
  }

  get signal(): AbortSignal | undefined {
    if (this.#controller) return this.#controller.signal;
    if (!this.#onGone) return undefined;
    const controller = (this.#controller = new AbortController());
    // A client's doing, as a body cut short is (body.ts): not an error of the gateway's, nothing to log.
    this.#onGone(() => controller.abort(gatewayError('TG_ERR_CLIENT_CLOSED', 'The client went away while its request waited for a model server')));
    return controller.signal;
  }

  /**
   * A reload replaced the pool's configuration while the request waited (a blue/green swap of its servers and target
   * model): its model is resolved again in `pool` under the configuration in force, as at its arrival (the target drawn
   * anew, the body's model rewritten to it), so the new servers are not asked for the old target. A model that pool no
   * longer serves is refused as the queue of a removed pool is: 503 no_healthy_endpoints, which a client may retry.
   */
  reconfigured(pool: PoolConfig): void {
    const ctx = this.#ctx;
    ctx.backend = { kind: 'pool', pool };
    try {
      resolveModel(this.#inForce.config, ctx);
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
      throw gatewayError('TG_ERR_NO_ENDPOINTS', `pool "${pool.name}" no longer serves the model "${clipName(ctx.model)}": the configuration changed while the request waited`);
    }
    this.pool = pool;
    this.targetModel = ctx.targetModel!;
    this.priority = ctx.priority;
  }
}
