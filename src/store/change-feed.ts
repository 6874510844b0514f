// In-process fan-out of "something changed" events, so API management can refresh its in-memory snapshot.
import type { Logger } from '../lib/logger.js';
import type { IdentityRows } from './snapshot.js';

export const RESOURCE_TYPES = ['apiproduct', 'operationset', 'manifest', 'developer', 'app', 'credential', 'kvm'] as const;

export type ResourceType = (typeof RESOURCE_TYPES)[number];

/** One key-value map entry, as a change event names it. */
export interface KvmEntryRef {
  scope: string;
  mapName: string;
  key: string;
}

/** The resource types whose rows make up who may call (the keys, their apps and developers). */
export const IDENTITY_TYPES: ReadonlySet<ResourceType> = new Set(['developer', 'app', 'credential']);

/**
 * The keys, apps and developers a change of identity rows alone touched (a key, every key of an app, of every app of
 * a developer): a listener may read just those again.
 */
export interface IdentityRefs {
  appIds: string[];
  developerIds: string[];
  /**
   * Keys changed one by one, none of them of the apps named: read alone, as a key issued into an app of 10,000 cost
   * a read and rebuild of all of them (imports into one app slowed to 9 keys/s, and SQLite held requests seconds).
   */
  keyIds?: string[];
}

export interface ChangeEvent {
  /**
   * What a committed transaction touched; every type after the PostgreSQL listener reconnects (events may be lost) or
   * after a COMMIT whose outcome is unknown (its answer was lost).
   */
  resourceTypes: ResourceType[];
  /**
   * Set when the transaction's `kvm` changes were these entries alone (policies' `put`s, written per request): a
   * listener may read just them again. Without it a `kvm` change may be anything (a whole map gone).
   */
  kvmEntries?: KvmEntryRef[];
  /** Set when the transaction changed identity rows alone (IDENTITY_TYPES) and named the owner of each change. */
  identity?: IdentityRefs;
  /**
   * This process's changes with `identity` only: its rows as the transaction left them, read inside it just before
   * COMMIT. A listener can serve the change from them at once, whether or not the database can be read afterwards.
   */
  identityRows?: IdentityRows;
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
