// A waiting room served fairly: higher priority first, and within one priority, round-robin between tenants
// (fairness ids), each tenant's items in arrival order. The flow-control queue of a saturated pool, and the JavaScript
// sandbox's runs waiting for a worker (one tenant per policy).

export interface Queued {
  readonly priority: number;
  readonly fairnessId: string;
}

class Tenant<T> {
  readonly items: T[] = [];
  constructor(readonly id: string) {}
}

class Band<T extends Queued> {
  readonly tenants = new Map<string, Tenant<T>>();
  /** Tenants with queued items, in turn order; `turn` indexes the next one to serve. */
  readonly rotation: Tenant<T>[] = [];
  turn = 0;
  size = 0;
  constructor(readonly priority: number) {}

  push(item: T): void {
    let tenant = this.tenants.get(item.fairnessId);
    if (!tenant) {
      tenant = new Tenant<T>(item.fairnessId);
      this.tenants.set(item.fairnessId, tenant);
      this.rotation.push(tenant);
    }
    tenant.items.push(item);
    this.size++;
  }

  shift(): T {
    const tenant = this.rotation[this.turn];
    const item = tenant.items.shift()!;
    this.size--;
    if (tenant.items.length === 0) this.#drop(this.turn);
    else this.turn = (this.turn + 1) % this.rotation.length;
    return item;
  }

  remove(item: T): boolean {
    const tenant = this.tenants.get(item.fairnessId);
    const at = tenant ? tenant.items.indexOf(item) : -1;
    if (!tenant || at < 0) return false;
    tenant.items.splice(at, 1);
    this.size--;
    if (tenant.items.length === 0) this.#drop(this.rotation.indexOf(tenant));
    return true;
  }

  #drop(at: number): void {
    const tenant = this.rotation[at];
    this.rotation.splice(at, 1);
    this.tenants.delete(tenant.id);
    if (at < this.turn) this.turn--;
    if (this.turn >= this.rotation.length) this.turn = 0;
  }
}

export class FairQueue<T extends Queued> {
  /** Non-empty bands, highest priority first. */
  readonly #bands: Band<T>[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(item: T): void {
    let i = 0;
    while (i < this.#bands.length && this.#bands[i].priority > item.priority) i++;
    let band = this.#bands[i];
    if (!band || band.priority !== item.priority) {
      band = new Band<T>(item.priority);
      this.#bands.splice(i, 0, band);
    }
    band.push(item);
    this.#size++;
  }

  /** The priority of the next item to serve (the highest queued), or undefined when empty. */
  get headPriority(): number | undefined {
    return this.#bands[0]?.priority;
  }

  /** The priority of the last item to serve (the lowest queued), or undefined when empty. */
  get tailPriority(): number | undefined {
    return this.#bands.at(-1)?.priority;
  }

  /** The next item to serve, or undefined when empty. */
  shift(): T | undefined {
    const band = this.#bands[0];
    if (!band) return undefined;
    const item = band.shift();
    this.#size--;
    if (band.size === 0) this.#bands.shift();
    return item;
  }

  /** Takes out an item that gave up (timed out, aborted); false when it was no longer queued. */
  remove(item: T): boolean {
    const i = this.#bands.findIndex((b) => b.priority === item.priority);
    if (i < 0 || !this.#bands[i].remove(item)) return false;
    this.#size--;
    if (this.#bands[i].size === 0) this.#bands.splice(i, 1);
    return true;
  }

  /**
   * For an arrival at a full queue: takes out the items it may take the place of, one step after another until
   * `enough` of them are taken (one for a limit on length; as many as free the room for a limit on bytes). Each step
   * takes the newest of the tenant holding most of the lowest band (counting what the steps before took), when that
   * band ranks below the arrival, or ranks the same and that tenant holds more than the arrival's tenant would. So a
   * critical request is not turned away by standard ones, and one tenant filling the queue does not keep the others
   * out. Returns the items taken out, or undefined, taking none, when the arrival's claim runs out first.
   */
  displaceUntil(arrival: Queued, enough: (taken: readonly T[]) => boolean): T[] | undefined {
    const taken: T[] = [];
    const gone = new Map<Tenant<T>, number>();
    const left = (t: Tenant<T> | undefined) => (t ? t.items.length - (gone.get(t) ?? 0) : 0);
    for (let b = this.#bands.length - 1; b >= 0 && !enough(taken); ) {
      const band = this.#bands[b];
      if (band.priority > arrival.priority) return undefined;
      let top: Tenant<T> | undefined;
      for (const t of band.rotation) if (left(t) > left(top)) top = t;
      if (!top) {
        b--;
        continue;
      }
      if (band.priority === arrival.priority && left(top) <= left(band.tenants.get(arrival.fairnessId)) + 1) return undefined;
      const n = gone.get(top) ?? 0;
      taken.push(top.items[top.items.length - 1 - n]);
      gone.set(top, n + 1);
    }
    if (!enough(taken)) return undefined;
    for (const item of taken) this.remove(item);
    return taken;
  }

  /** Takes out every item of a priority below `priority`; returns them. */
  takeBelow(priority: number): T[] {
    const taken: T[] = [];
    for (let band = this.#bands.at(-1); band && band.priority < priority; band = this.#bands.at(-1)) {
      this.#bands.pop();
      this.#size -= band.size;
      for (const tenant of band.rotation) taken.push(...tenant.items);
    }
    return taken;
  }

  /** Items queued for one tenant, over every priority. */
  tenantSize(fairnessId: string): number {
    let n = 0;
    for (const band of this.#bands) n += band.tenants.get(fairnessId)?.items.length ?? 0;
    return n;
  }

  /** Queued items per priority, highest first. */
  lengths(): { priority: number; length: number }[] {
    return this.#bands.map((b) => ({ priority: b.priority, length: b.size }));
  }
}
