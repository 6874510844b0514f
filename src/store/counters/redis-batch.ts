// Counter operations asked for in one event-loop turn go to one Redis server as one script call (BATCH), in the order
// they were asked for. A request's policy chain makes three or four of them and concurrent requests make theirs in the
// same turns: one call apiece cost the gateway more CPU (ioredis's command objects, promises, deadlines, a write each)
// than the policies did. Not for a cluster, where a script may touch only one slot and counters live in many.
import type { Redis } from 'ioredis';
import { withTimeout } from '../../lib/with-timeout.js';
import { loadIoredis } from '../ioredis.js';
import { BATCH, SCRIPT_CODES, type ScriptName } from './redis-scripts.js';

type Arg = string | number;

interface Queued {
  script: ScriptName;
  keys: string[];
  args: Arg[];
  /** False once what was pending was abandoned (abandonPending, after a counter call timed out): never sent then. */
  wanted: () => boolean;
  resolve: (reply: unknown) => void;
  reject: (err: unknown) => void;
}

interface BatchCommand {
  tgBatch(numberOfKeys: number, ...keysAndArgs: Arg[]): Promise<[number, unknown][]>;
}

/**
 * The most operations in one call: a script blocks the server while it runs (~15 µs an operation here), so a turn
 * with thousands of them goes in several calls and other clients are served between them.
 */
const MAX_BATCH = 128;

/**
 * Rejects what was abandoned (a counter call timed out: abandonPending) before its turn's call left: it was never
 * sent, so it was never applied.
 */
export class AbandonedError extends Error {}

export class CounterBatch {
  readonly #redis: Redis & BatchCommand;
  readonly #timeoutMs: number;
  #queue: Queued[] = [];

  /** `timeoutMs`: the longest wait for one call, whose operations then all fail with a TimeoutError. */
  constructor(redis: Redis, timeoutMs: number) {
    redis.defineCommand('tgBatch', { lua: BATCH });
    this.#redis = redis as Redis & BatchCommand;
    this.#timeoutMs = timeoutMs;
  }

  /** `script`'s reply, once this turn's call has been answered. */
  run<T>(script: ScriptName, keys: string[], args: Arg[], wanted: () => boolean): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.#queue.length === 0) setImmediate(this.#flush);
      this.#queue.push({ script, keys, args, wanted, resolve: resolve as (reply: unknown) => void, reject });
    });
  }

  /** Sends what is queued now rather than at the end of the turn (before the connection closes). */
  flushNow(): void {
    if (this.#queue.length > 0) this.#flush();
  }

  readonly #flush = (): void => {
    const queued = this.#queue;
    this.#queue = [];
    const sent: Queued[] = [];
    for (const op of queued) {
      if (op.wanted()) sent.push(op);
      else op.reject(new AbandonedError('abandoned before it was sent (a counter call timed out)'));
    }
    for (let i = 0; i < sent.length; i += MAX_BATCH) this.#send(sent.slice(i, i + MAX_BATCH));
  };

  #send(ops: Queued[]): void {
    const keys: Arg[] = [];
    const argv: Arg[] = [ops.length];
    for (const op of ops) {
      keys.push(...op.keys);
      argv.push(SCRIPT_CODES[op.script], op.keys.length, op.args.length, ...op.args);
    }
    let call: Promise<[number, unknown][]>;
    try {
      call = this.#redis.tgBatch(keys.length, ...keys, ...argv);
    } catch (err) {
      call = Promise.reject(err as Error);
    }
    withTimeout(call, this.#timeoutMs, 'a Redis counter command').then(
      (replies) => {
        const { ReplyError } = loadIoredis();
        ops.forEach((op, i) => {
          const [ok, reply] = replies[i];
          if (ok === 1) op.resolve(reply);
          else op.reject(new ReplyError(String(reply)));
        });
      },
      (err: unknown) => {
        for (const op of ops) op.reject(err);
      },
    );
  }
}
