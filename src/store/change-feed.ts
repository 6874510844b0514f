// In-process fan-out of "something changed" events, so API management can refresh its in-memory snapshot.
import type { Logger } from '../lib/logger.js';

export const RESOURCE_TYPES = ['apiproduct', 'operationset', 'manifest', 'developer', 'app', 'credential', 'kvm'] as const;

export type ResourceType = (typeof RESOURCE_TYPES)[number];

/** One key-value map entry, as a change event names it. */
export interface KvmEntryRef {
  scope: string;
  mapName: string;
  key: string;
}

export interface ChangeEvent {
  /** What a committed transaction touched; every type after the PostgreSQL listener reconnects (events may be lost). */
  resourceTypes: ResourceType[];
  /**
   * Set when the transaction's `kvm` changes were these entries alone (policies' `put`s, written per request): a
   * listener may read just them again. Without it a `kvm` change may be anything (a whole map gone).
   */
  kvmEntries?: KvmEntryRef[];
  /** `local`: committed by this process; `remote`: learned from another replica through PostgreSQL NOTIFY. */
  origin: 'local' | 'remote';
}

export type ChangeListener = (event: ChangeEvent) => void;

export class ChangeFeed {
  readonly #listeners = new Set<ChangeListener>();
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Returns the unsubscribe function. */
  subscribe(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Called after the commit: a throwing listener is logged, never turned into a failure of the committed write. */
  publish(event: ChangeEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.#logger.error({ err }, 'store change listener failed');
      }
    }
  }
}
