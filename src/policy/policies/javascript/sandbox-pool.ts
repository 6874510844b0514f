// The sandbox workers JavaScript policies share: one job per worker at a time, a queue per script in front, served in
// turn (one tenant's runaway script queued a thousand times must not make another tenant's wait behind all of them),
// and a watchdog that terminates a worker whose run outlives its time limit (and starts a fresh one), so no script can
// hold the event loop or a worker for long. Idle workers do not keep the process alive.
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { FairQueue, type Queued } from '../../../lib/fair-queue.js';
import { spawnWorker } from '../../../lib/spawn-worker.js';
import type { SandboxJob, ScriptRef, WorkerMessage } from './sandbox-protocol.js';

export class SandboxError extends Error {
  constructor(readonly kind: 'timeout' | 'error', message: string) {
    super(message);
  }
}

/** A run waiting for a worker: each policy's script is a tenant of its own, all of one priority. */
interface Pending extends Queued {
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
  readonly #queue = new FairQueue<Pending>();
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
    if (this.#queue.size >= MAX_QUEUED || this.#queue.tenantSize(script.id) >= MAX_QUEUED_PER_SCRIPT) {
      return Promise.reject(new SandboxError('error', 'the JavaScript sandbox is overloaded'));
    }
    this.start();
    return new Promise((resolve, reject) => {
      this.#queue.push({ priority: 0, fairnessId: script.id, job: { id: ++this.#seq, script, timeLimitMs, input }, resolve, reject });
      this.#dispatch();
    });
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
      if (this.#queue.size === 0) return;
      if (!slot.ready || slot.current) continue;
      const p = this.#queue.shift()!;
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
    for (let q = this.#queue.shift(); q; q = this.#queue.shift()) q.reject(new SandboxError('error', `${message} while starting`));
  }
}

let shared: SandboxPool | undefined;

/** The process's pool, started on first use. */
export function sandboxPool(): SandboxPool {
  return (shared ??= new SandboxPool());
}
