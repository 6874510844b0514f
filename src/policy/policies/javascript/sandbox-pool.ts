// The sandbox workers JavaScript policies share: one job per worker at a time, a queue per script in front, served in
// turn (one tenant's runaway script queued a thousand times must not make another tenant's wait behind all of them),
// and a watchdog that terminates a worker whose run outlives its time limit (and starts a fresh one), so no script can
// hold the event loop or a worker for long. Idle workers do not keep the process alive.
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../../../lib/spawn-worker.js';
import type { SandboxJob, ScriptRef, WorkerMessage } from './sandbox-protocol.js';

export class SandboxError extends Error {
  constructor(readonly kind: 'timeout' | 'error', message: string) {
    super(message);
  }
}

interface Pending {
  job: SandboxJob;
  resolve: (output: string) => void;
  reject: (err: SandboxError) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  current: Pending | null;
  watchdog: NodeJS.Timeout | null;
}

/** Beyond the time limit, how long a worker may take to answer before it is terminated. */
const WATCHDOG_GRACE_MS = 100;
/** Jobs waiting in all, and for one script: past either, a run is refused at once as overloaded. */
const MAX_QUEUED = 1000;
const MAX_QUEUED_PER_SCRIPT = 200;

export class SandboxPool {
  readonly #size: number;
  readonly #slots: Slot[] = [];
  /** Waiting jobs by script id, in arrival order; the map's order is the turn order. */
  readonly #queues = new Map<string, Pending[]>();
  #queued = 0;
  #readyWaiters: (() => void)[] = [];
  #seq = 0;

  constructor(size = Math.max(2, Math.min(4, availableParallelism() - 1))) {
    this.#size = size;
  }

  /** Starts the workers (when a configuration with scripts loads), so the first request does not wait for them. */
  start(): void {
    while (this.#slots.length < this.#size) this.#slots.push(this.#spawn());
  }

  /** Resolves once every worker is ready. */
  ready(): Promise<void> {
    this.start();
    if (this.#slots.every((s) => s.ready)) return Promise.resolve();
    return new Promise((resolve) => this.#readyWaiters.push(resolve));
  }

  /** Runs the script on `input` (JSON); resolves with its output (JSON). */
  run(script: ScriptRef, timeLimitMs: number, input: string): Promise<string> {
    const queue = this.#queues.get(script.id);
    if (this.#queued >= MAX_QUEUED || (queue?.length ?? 0) >= MAX_QUEUED_PER_SCRIPT) {
      return Promise.reject(new SandboxError('error', 'the JavaScript sandbox is overloaded'));
    }
    this.start();
    return new Promise((resolve, reject) => {
      const p = { job: { id: ++this.#seq, script, timeLimitMs, input }, resolve, reject };
      if (queue) queue.push(p);
      else this.#queues.set(script.id, [p]);
      this.#queued++;
      this.#dispatch();
    });
  }

  /** The next job: the first of the script whose turn it is; that script goes to the back of the turn order. */
  #next(): Pending | undefined {
    for (const [id, queue] of this.#queues) {
      const p = queue.shift()!;
      this.#queues.delete(id);
      if (queue.length > 0) this.#queues.set(id, queue);
      this.#queued--;
      return p;
    }
    return undefined;
  }

  #spawn(): Slot {
    // Referenced until it is ready: a job may be waiting for it.
    const slot: Slot = { worker: spawnWorker(import.meta.url, 'sandbox-worker'), ready: false, current: null, watchdog: null };
    slot.worker.on('message', (m: WorkerMessage) => this.#onMessage(slot, m));
    slot.worker.on('error', () => this.#replace(slot, 'the JavaScript sandbox failed'));
    slot.worker.on('exit', () => this.#replace(slot, 'the JavaScript sandbox stopped'));
    return slot;
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (this.#queued === 0) return;
      if (!slot.ready || slot.current) continue;
      const p = this.#next()!;
      slot.current = p;
      // Busy workers keep the process alive: a caller awaiting the answer must get it.
      slot.worker.ref();
      slot.watchdog = setTimeout(() => {
        this.#replace(slot, `timed out after ${p.job.timeLimitMs} ms`, 'timeout');
      }, p.job.timeLimitMs + WATCHDOG_GRACE_MS);
      slot.worker.postMessage(p.job);
    }
  }

  #onMessage(slot: Slot, m: WorkerMessage): void {
    if ('ready' in m) {
      slot.ready = true;
      slot.worker.unref();
      if (this.#slots.every((s) => s.ready)) for (const w of this.#readyWaiters.splice(0)) w();
      this.#dispatch();
      return;
    }
    const p = slot.current;
    if (!p || p.job.id !== m.id) return;
    this.#release(slot);
    if (m.ok) p.resolve(m.output);
    else p.reject(new SandboxError(m.kind, m.kind === 'timeout' ? `timed out after ${p.job.timeLimitMs} ms` : m.message));
    this.#dispatch();
  }

  #release(slot: Slot): void {
    if (slot.watchdog) clearTimeout(slot.watchdog);
    slot.watchdog = null;
    slot.current = null;
    slot.worker.unref();
  }

  /** Terminates a worker (if it still runs), fails its job, and puts a fresh worker in its place. */
  #replace(slot: Slot, message: string, kind: 'timeout' | 'error' = 'error'): void {
    const i = this.#slots.indexOf(slot);
    if (i === -1) return;
    const p = slot.current;
    this.#release(slot);
    slot.worker.removeAllListeners();
    slot.worker.on('error', () => {});
    void slot.worker.terminate();
    if (slot.ready) {
      this.#slots[i] = this.#spawn();
      p?.reject(new SandboxError(kind, message));
      return;
    }
    // A worker that never started would fail again at once: give up on the waiting jobs; the next run retries.
    this.#slots.splice(i, 1);
    for (let q = this.#next(); q; q = this.#next()) q.reject(new SandboxError('error', `${message} while starting`));
  }
}

let shared: SandboxPool | undefined;

/** The process's pool, started on first use. */
export function sandboxPool(): SandboxPool {
  return (shared ??= new SandboxPool());
}
