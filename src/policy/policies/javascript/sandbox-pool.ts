// The sandbox workers JavaScript policies share: one job per worker at a time, a queue per script in front, served in
// turn (one tenant's runaway script queued a thousand times must not make another tenant's wait behind all of them),
// and a watchdog that terminates a worker whose run outlives its time limit, so no script can hold the event loop or a
// worker for long. That costs the script that needed it, not others: a ready spare worker takes the terminated one's
// place, and the script's later runs go to the spare alone, so they no longer throw away the scripts (and globals)
// the shared workers keep. Idle workers do not keep the process alive.
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
/** A watchdog this late was held up by the main thread, not by the script (see #watch). */
const STALL_MS = 50;
/** Jobs waiting in all, and for one script: past either, a run is refused at once as overloaded. */
const MAX_QUEUED = 1000;
const MAX_QUEUED_PER_SCRIPT = 200;

export class SandboxPool {
  readonly #size: number;
  readonly #slots: Slot[] = [];
  /**
   * One worker beyond `size`: it runs the scripts that have needed the watchdog, and, when idle, takes at once the
   * place of a shared worker that was terminated. A worker starts in ~0.4 s; the next runs waited that long for it.
   */
  #spare: Slot | null = null;
  readonly #queue = new FairQueue<Pending>();
  /** Runs of the scripts that have needed the watchdog: served in turn too, by the spare alone. */
  readonly #isolatedQueue = new FairQueue<Pending>();
  /**
   * Scripts (ids) the watchdog had to stop, for good: a run stuck in one native call (a long `indexOf`) never sees
   * QuickJS's interrupt, and the script's next runs may well be stuck the same way.
   */
  readonly #isolated = new Set<string>();
  #readyWaiters: (() => void)[] = [];
  #seq = 0;

  constructor(size = Math.max(2, Math.min(4, availableParallelism() - 1))) {
    this.#size = size;
  }

  /** Starts the workers (when a configuration with scripts loads), so the first request does not wait for them. */
  start(): void {
    while (this.#slots.length < this.#size) this.#slots.push(this.#spawn());
    this.#spare ??= this.#spawn();
  }

  /** Resolves once every worker is ready. */
  ready(): Promise<void> {
    this.start();
    if (this.#allReady()) return Promise.resolve();
    return new Promise((resolve) => this.#readyWaiters.push(resolve));
  }

  /** Runs the script on `input` (JSON); resolves with its output (JSON). */
  run(script: ScriptRef, timeLimitMs: number, input: string): Promise<string> {
    const queued = this.#queue.tenantSize(script.id) + this.#isolatedQueue.tenantSize(script.id);
    if (this.#queue.size + this.#isolatedQueue.size >= MAX_QUEUED || queued >= MAX_QUEUED_PER_SCRIPT) {
      return Promise.reject(new SandboxError('error', 'the JavaScript sandbox is overloaded'));
    }
    this.start();
    const queue = this.#isolated.has(script.id) ? this.#isolatedQueue : this.#queue;
    return new Promise((resolve, reject) => {
      queue.push({ priority: 0, fairnessId: script.id, job: { id: ++this.#seq, script, timeLimitMs, input }, resolve, reject });
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

  #allReady(): boolean {
    return this.#slots.every((s) => s.ready) && (this.#spare?.ready ?? true);
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (!slot.ready || slot.current) continue;
      const p = this.#nextShared();
      if (!p) break;
      this.#post(slot, p);
    }
    const spare = this.#spare;
    if (spare?.ready && !spare.current) {
      const p = this.#isolatedQueue.shift();
      if (p) this.#post(spare, p);
    }
  }

  /** The next run for a shared worker; those of a script isolated since they were queued move to the spare's queue. */
  #nextShared(): Pending | undefined {
    let p = this.#queue.shift();
    for (; p && this.#isolated.has(p.job.script.id); p = this.#queue.shift()) this.#isolatedQueue.push(p);
    return p;
  }

  #post(slot: Slot, p: Pending): void {
    slot.current = p;
    // Busy workers keep the process alive: a caller awaiting the answer must get it.
    slot.worker.ref();
    this.#watch(slot, p, p.job.timeLimitMs + WATCHDOG_GRACE_MS);
    slot.worker.postMessage(p.job);
  }

  /**
   * Ends the run (and its worker) if no answer came within `ms`. A timer that fires late says the main thread was
   * stalled meanwhile (a GC pause, a long synchronous parse): timers run before the poll phase that delivers the
   * worker's answer, so the answer may be waiting unread. It gets one more short turn before the run is taken for
   * stuck, since a stuck script is confined to the spare worker for good.
   */
  #watch(slot: Slot, p: Pending, ms: number, again = true): void {
    const due = performance.now() + ms;
    slot.watchdog = setTimeout(() => {
      if (again && performance.now() - due > STALL_MS) return this.#watch(slot, p, STALL_MS, false);
      this.#isolated.add(p.job.script.id);
      this.#replace(slot, `timed out after ${p.job.timeLimitMs} ms`, 'timeout');
    }, ms);
  }

  #onMessage(slot: Slot, m: WorkerMessage): void {
    if ('ready' in m) {
      slot.ready = true;
      slot.worker.unref();
      if (this.#allReady()) for (const w of this.#readyWaiters.splice(0)) w();
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

  /**
   * Terminates a worker (if it still runs), fails its job, and puts a worker in its place: the spare when it is ready
   * and idle (a fresh spare starts), else a fresh one.
   */
  #replace(slot: Slot, message: string, kind: 'timeout' | 'error' = 'error'): void {
    const i = this.#slots.indexOf(slot);
    if (i === -1 && slot !== this.#spare) return;
    const p = slot.current;
    this.#release(slot);
    slot.worker.removeAllListeners();
    slot.worker.on('error', () => {});
    void slot.worker.terminate();
    if (slot.ready) {
      const spare = this.#spare;
      if (i === -1) this.#spare = this.#spawn();
      else if (spare?.ready && !spare.current) [this.#slots[i], this.#spare] = [spare, this.#spawn()];
      else this.#slots[i] = this.#spawn();
      p?.reject(new SandboxError(kind, message));
      this.#dispatch();
      return;
    }
    // A worker that never started would fail again at once: give up on the waiting jobs; the next run retries.
    if (i === -1) this.#spare = null;
    else this.#slots.splice(i, 1);
    for (const queue of [this.#queue, this.#isolatedQueue]) {
      for (let q = queue.shift(); q; q = queue.shift()) q.reject(new SandboxError('error', `${message} while starting`));
    }
  }
}

let shared: SandboxPool | undefined;

/** The process's pool, started on first use. */
export function sandboxPool(): SandboxPool {
  return (shared ??= new SandboxPool());
}
