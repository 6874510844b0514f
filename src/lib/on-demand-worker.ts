// A worker thread started for the first call, kept while calls come, and closed once idle: a thread that exited
// (crashed, or closed when idle) fails only the calls it had, and a new one takes the next. It keeps the process
// alive only while someone awaits it.
import type { Worker } from 'node:worker_threads';
import { WorkerCalls } from './worker-calls.js';

export interface OnDemandWorkerOptions<Request> {
  /** Starts the thread (spawnWorker). */
  spawn: () => Worker;
  /** Named in the errors of failed calls. */
  name: string;
  /** The request that asks the thread to finish and exit. */
  closeRequest: Request;
  /** Idle this long, the thread is closed. */
  idleMs: number;
  /** How long close() lets the thread finish before terminating it. */
  closeWaitMs: number;
}

export class OnDemandWorker<Request extends object, Answer extends { seq: number }> {
  readonly #o: OnDemandWorkerOptions<Request>;
  #thread: { worker: Worker; calls: WorkerCalls<Request, Answer> } | undefined;
  #running = 0;
  #idle: NodeJS.Timeout | undefined;

  constructor(options: OnDemandWorkerOptions<Request>) {
    this.#o = options;
  }

  async call(request: Request): Promise<Answer> {
    clearTimeout(this.#idle);
    if (!this.#thread || this.#thread.calls.exited) {
      const worker = this.#o.spawn();
      this.#thread = { worker, calls: new WorkerCalls(worker, { name: this.#o.name }) };
    }
    const { worker, calls } = this.#thread;
    // WorkerCalls lets a thread not keep the process alive; a call someone awaits must.
    if (this.#running++ === 0) worker.ref();
    try {
      return await calls.call(request);
    } finally {
      if (--this.#running === 0) {
        worker.unref();
        this.#idle = setTimeout(() => void this.close(), this.#o.idleMs).unref();
      }
    }
  }

  /** Ends the thread, if one runs; a later call starts another. */
  async close(): Promise<void> {
    clearTimeout(this.#idle);
    const thread = this.#thread;
    this.#thread = undefined;
    await thread?.calls.close(this.#o.closeRequest, this.#o.closeWaitMs);
  }
}
