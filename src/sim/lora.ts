// LoRA adapter residency: at most maxLoras adapters loaded, loading takes time, idle adapters are evicted LRU.
import type { Clock } from './clock.js';

export type LoraStatus = 'ready' | 'loading' | 'blocked';

export interface LoraOptions {
  maxLoras: number;
  /** Simulated load time of one adapter, in (already time-scaled) milliseconds. */
  loadMs: number;
  clock: Clock;
  /** Called when a load finishes, so the scheduler can admit the requests that waited for it. */
  onLoaded: () => void;
}

interface Slot {
  loaded: boolean;
  running: number;
  lastUsed: number;
  cancelLoad?: () => void;
}

export class LoraManager {
  readonly maxLoras: number;
  #opts: LoraOptions;
  #slots = new Map<string, Slot>();

  constructor(opts: LoraOptions) {
    this.maxLoras = opts.maxLoras;
    this.#opts = opts;
  }

  /** Adapters loaded now. */
  get resident(): string[] {
    return [...this.#slots].filter(([, s]) => s.loaded).map(([name]) => name);
  }

  /** Adapters being loaded now. */
  get loading(): string[] {
    return [...this.#slots].filter(([, s]) => !s.loaded).map(([name]) => name);
  }

  /**
   * Whether a request for `name` can run now; starts loading it when a slot is free or an idle adapter can be
   * evicted. 'blocked' means every slot serves running requests (or is loading), so the request keeps waiting.
   */
  prepare(name: string): LoraStatus {
    const slot = this.#slots.get(name);
    if (slot) return slot.loaded ? 'ready' : 'loading';
    if (this.#slots.size >= this.maxLoras && !this.#evictIdle()) return 'blocked';
    const fresh: Slot = { loaded: false, running: 0, lastUsed: this.#opts.clock.now() };
    fresh.cancelLoad = this.#opts.clock.setTimer(() => {
      fresh.loaded = true;
      fresh.cancelLoad = undefined;
      this.#opts.onLoaded();
    }, this.#opts.loadMs);
    this.#slots.set(name, fresh);
    return 'loading';
  }

  /** A request on `name` started running (the adapter must be ready). */
  retain(name: string): void {
    const slot = this.#slots.get(name)!;
    slot.running++;
    slot.lastUsed = this.#opts.clock.now();
  }

  release(name: string): void {
    const slot = this.#slots.get(name);
    if (slot) slot.running--;
  }

  close(): void {
    for (const slot of this.#slots.values()) slot.cancelLoad?.();
  }

  #evictIdle(): boolean {
    let victim: string | undefined;
    let oldest = Infinity;
    for (const [name, s] of this.#slots) {
      if (s.loaded && s.running === 0 && s.lastUsed < oldest) {
        victim = name;
        oldest = s.lastUsed;
      }
    }
    if (victim === undefined) return false;
    this.#slots.delete(victim);
    return true;
  }
}
