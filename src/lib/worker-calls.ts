// Calls to a worker thread that answers requests: each request numbered, each answer matched to its call by number,
// every call still waiting failed when the thread exits, and a close that waits for the thread a bounded time.
import type { Worker } from 'node:worker_threads';

/** A request as the thread receives it: with the number its answer must carry. */
export type Numbered<T> = T & { seq: number };

export interface WorkerCallsOptions {
  /** Named in the errors of failed calls: "the <name> thread exited". */
  name: string;
  /** Messages that answer no waiting call (log lines, or an answer that came after its caller gave up). */
  onMessage?: (message: unknown) => void;
  /** The thread failed; it exits next, failing the calls still waiting. */
  onError?: (err: Error) => void;
}

/** The thread exited before it answered (it could not start, for want of descriptors or memory, or it failed). */
export class WorkerExitedError extends Error {}

export class WorkerCalls<Request extends object, Answer extends { seq: number }> {
  readonly #worker: Worker;
  readonly #name: string;
  readonly #waiting = new Map<number, { resolve(answer: Answer): void; reject(err: Error): void }>();
  #seq = 0;
  #exited = false;

  constructor(worker: Worker, opts: WorkerCallsOptions) {
    this.#worker = worker;
    this.#name = opts.name;
    worker.on('message', (message: unknown) => {
      const seq = (message as { seq?: unknown }).seq;
      const waiting = typeof seq === 'number' ? this.#waiting.get(seq) : undefined;
      if (!waiting) return opts.onMessage?.(message);
      this.#waiting.delete(seq as number);
      waiting.resolve(message as Answer);
    });
    // Without a listener, a thread's error would be thrown in this one.
    worker.on('error', opts.onError ?? (() => {}));
    worker.on('exit', () => {
      this.#exited = true;
      const err = new WorkerExitedError(`the ${this.#name} thread exited`);
      for (const waiting of this.#waiting.values()) waiting.reject(err);
      this.#waiting.clear();
    });
    // Its owner closes it; a forgotten thread must not keep the process alive. After the listeners: adding a
    // 'message' listener refs the worker's port again.
    worker.unref();
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** Sends `request` numbered; resolves with the thread's answer to it, rejects when the thread exits first. */
  call(request: Request): Promise<Answer> {
    if (this.#exited) return Promise.reject(new WorkerExitedError(`the ${this.#name} thread has exited`));
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#waiting.set(seq, { resolve, reject });
      this.#worker.postMessage({ ...request, seq } satisfies Numbered<Request>);
    });
  }

  /** Sends `request` (which asks the thread to finish and exit), waits for the exit, terminates it after `waitMs`. */
  async close(request: Request, waitMs: number): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
    this.#worker.postMessage(request);
    const timer = setTimeout(() => void this.#worker.terminate(), waitMs);
    await exited;
    clearTimeout(timer);
  }
}
