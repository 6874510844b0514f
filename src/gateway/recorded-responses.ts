// Finding stored responses in the usage records (AnalyticsRecords.findResponse) for the ids this process did not see
// made. Any caller with a key can name any id, so the queries are bounded, shared out fairly between apps, and not
// repeated for an id that was just found missing.
import { FairQueue, type Queued } from '../lib/fair-queue.js';
import type { Logger } from '../lib/logger.js';
import { withTimeout } from '../lib/with-timeout.js';
import type { FindRecordedResponse, RecordedResponse } from './stored-responses.js';

/** What the records said of an id: its creation record, none, or nothing at all (the query failed or could not run). */
export type RecordsAnswer = { recorded: RecordedResponse | undefined; failed: false } | { recorded: undefined; failed: true };

/**
 * Queries at once. One that its request gave up on still counts until it ends: it cannot be cancelled and holds a
 * database connection, so against a stalled table a flood would otherwise take the whole pool.
 */
const MAX_RUNNING = 8;
/**
 * Lookups waiting for a query slot, per app and in all: an app flooding unknown ids waits behind its own lookups (the
 * slots go round the apps that wait, FairQueue), and past its share of the waiting room its lookups fail at once. In
 * a full room an app's lookup takes the place of the newest of the app holding most of it (FairQueue.displaceUntil),
 * so a few apps flooding together cannot keep another out either.
 */
const MAX_WAITING_PER_TENANT = 64;
const MAX_WAITING = 1024;
/** A lookup not answered within this (waiting included) counts as failed (the database stalled): its request is not held longer. */
const LOOKUP_TIMEOUT_MS = 2000;
/**
 * A query that found nothing answers for the same id this long (a brief negative cache): however many requests name
 * an unknown id, and however often they ask again while its creation record may still be on its way, the database
 * is asked about it at most once in this time.
 */
export const MISS_REUSE_MS = 200;
/** Ids found missing that are remembered at most (the oldest go first): any caller can name new ones. */
const MAX_MISSES = 10_000;

interface Waiter extends Queued {
  run(): void;
  /** Its place was taken (displaced): the lookup fails. */
  refuse(): void;
}

const FAILED: RecordsAnswer = { recorded: undefined, failed: true };

export class RecordedResponses {
  readonly #find: FindRecordedResponse;
  readonly #logger: Logger;
  #running = 0;
  readonly #waiting = new FairQueue<Waiter>();
  /** The query under way for each tenant and id: a tenant's requests for one id share it. */
  readonly #inFlight = new Map<string, Promise<RecordsAnswer>>();
  /** Id → when the last query that found nothing for it was sent (performance.now()). */
  readonly #misses = new Map<string, number>();

  constructor(find: FindRecordedResponse, logger: Logger) {
    this.#find = find;
    this.#logger = logger;
  }

  /**
   * The creation record of `id`, asked for `tenant` (an app, or '' for callers without a key). A query under way is
   * shared only within a tenant, so that no app's waiting lookups delay another's.
   */
  find(id: string, tenant: string): Promise<RecordsAnswer> {
    const missed = this.#misses.get(id);
    if (missed !== undefined && performance.now() - missed < MISS_REUSE_MS) return Promise.resolve({ recorded: undefined, failed: false });
    const key = `${tenant}\n${id}`;
    let query = this.#inFlight.get(key);
    if (!query) {
      query = this.#query(id, tenant).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, query);
    }
    return query;
  }

  async #query(id: string, tenant: string): Promise<RecordsAnswer> {
    const start = performance.now();
    if (!(await this.#slot(tenant))) return FAILED;
    const sent = performance.now();
    let recorded: RecordedResponse | undefined;
    try {
      recorded = await withTimeout(
        this.#find(id).finally(() => this.#release()),
        Math.max(0, LOOKUP_TIMEOUT_MS - (sent - start)),
        'a stored-response lookup',
      );
    } catch (err) {
      this.#logger.warn({ err }, 'could not look up a stored response in the usage records');
      return FAILED;
    }
    if (recorded) this.#misses.delete(id);
    else this.#missed(id, sent);
    return { recorded, failed: false };
  }

  /** Resolves true once a query slot is this tenant's, false when its share of the waiting room is full or the wait timed out. */
  #slot(tenant: string): Promise<boolean> | boolean {
    if (this.#running < MAX_RUNNING && this.#waiting.size === 0) {
      this.#running++;
      return true;
    }
    if (this.#waiting.tenantSize(tenant) >= MAX_WAITING_PER_TENANT) return false;
    if (this.#waiting.size >= MAX_WAITING) {
      const displaced = this.#waiting.displaceUntil({ priority: 0, fairnessId: tenant }, (taken) => taken.length > 0);
      if (!displaced) return false;
      for (const waiter of displaced) waiter.refuse();
    }
    return new Promise((resolve) => {
      const settle = (slot: boolean) => {
        clearTimeout(timer);
        resolve(slot);
      };
      const waiter: Waiter = { priority: 0, fairnessId: tenant, run: () => settle(true), refuse: () => settle(false) };
      const timer = setTimeout(() => resolve(!this.#waiting.remove(waiter)), LOOKUP_TIMEOUT_MS);
      this.#waiting.push(waiter);
    });
  }

  /** A query ended: its slot goes to the next tenant in turn that waits, or is freed. */
  #release(): void {
    const next = this.#waiting.shift();
    if (next) next.run();
    else this.#running--;
  }

  #missed(id: string, at: number): void {
    this.#misses.delete(id);
    this.#misses.set(id, at);
    if (this.#misses.size > MAX_MISSES) this.#misses.delete(this.#misses.keys().next().value!);
  }
}
