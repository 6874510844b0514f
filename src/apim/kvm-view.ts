// Key-value maps as policies see them: every entry decrypted into memory, so a read is a map lookup; writes go to the
// store (encrypted when the map is), which decides them, and show at once on this replica. One view serves every
// engine API management builds, so a change of entries alone updates it without rebuilding the policies.
import type { KeyValueMapSpec } from '../config/apim-kinds.js';
import type { Manifest } from '../config/manifest.js';
import type { Logger } from '../lib/logger.js';
import { withTimeout } from '../lib/with-timeout.js';
import type { KvmLookup } from '../policy/index.js';
import type { Database, KvmEntry, KvmEntryRef, KvmScope } from '../store/index.js';
import { KVM_KEY_ENV, type KvmCipher } from './kvm-cipher.js';

/** One id per entry (scope, map, key), for maps of entries: the view's values, the entries a change names. */
export const keyOf = (scope: string, map: string, key: string) => `${scope}\u0000${map}\u0000${key}`;

/**
 * How long a request waits for its put to be stored before the policy fails it (500 SetVariableFailed), as the OAuth
 * policies wait for the token table: a database that stalled held every request with a put until the OS gave up on
 * the connection, minutes later. A put is a few indexed statements, milliseconds; the bound leaves room for a wait
 * behind the admin API and analytics in the shared pool.
 */
export const KVM_PUT_TIMEOUT_MS = 2000;

/** How many of an encrypted map's entries an admin write checks against the key (a map may hold millions). */
const KEY_CHECK_SAMPLE = 64;

/** Why `cipher` must not write into `map`: it holds entries written under another key. */
function otherKeyProblem(map: string): string {
  return `map ${map} holds entries encrypted under another key: ${KVM_KEY_ENV} is not the key they were written with (start with that key, or delete those entries)`;
}

/**
 * Why `cipher` must not write to the encrypted map `map`, or undefined, from the store: any of up to KEY_CHECK_SAMPLE
 * of its entries written under another key (a restart with a wrong or new TOLLGATE_KVM_KEY). Written anyway, the map
 * held entries under two keys, no one key reading them all. (A flow's put asks the view, which knows every entry.)
 */
export async function mapKeyProblem(kvm: { encryptedSample(map: string, limit: number): Promise<string[]> }, cipher: KvmCipher, map: string): Promise<string | undefined> {
  const sample = await kvm.encryptedSample(map, KEY_CHECK_SAMPLE);
  return sample.every((v) => cipher.canDecrypt(v)) ? undefined : otherKeyProblem(map);
}

/** An encrypted entry this replica holds but cannot read: a policy reading it fails rather than take its default. */
export class UnreadableKvmEntryError extends Error {}

/** A value as this replica holds it: decrypted, with how the store holds it. */
interface Held {
  value: string;
  encrypted: boolean;
}

export class KvmView implements KvmLookup {
  #values = new Map<string, Held>();
  /** Entries (keyOf) the store holds encrypted under a key this replica does not have. */
  #unreadable = new Set<string>();
  /** How many of them each map holds: a flow's put into such a map is refused without asking the store. */
  #unreadableByMap = new Map<string, number>();
  /** The maps --config files declare: name → encrypted. */
  #fileMaps: ReadonlyMap<string, boolean> = new Map();
  readonly #cipher: KvmCipher | null;
  readonly #db: Database;
  readonly #logger: Logger;

  constructor(cipher: KvmCipher | null, db: Database, logger: Logger) {
    this.#cipher = cipher;
    this.#db = db;
    this.#logger = logger;
  }

  /** The maps of the --config files the installed policies were built from (the admin API's are read from the store). */
  useFileMaps(fileManifests: readonly Manifest[]): void {
    this.#fileMaps = new Map(fileManifests.filter((m) => m.kind === 'KeyValueMap').map((m) => [m.metadata.name, (m.spec as KeyValueMapSpec).encrypted]));
  }

  /** Replaces every value with what the store holds (a reload). */
  load(entries: readonly KvmEntry[]): void {
    const values = new Map<string, Held>();
    this.#unreadable = new Set();
    this.#unreadableByMap = new Map();
    for (const e of entries) {
      const held = this.#readable(e);
      if (held) values.set(keyOf(e.scope, e.mapName, e.key), held);
      else this.#markUnreadable(e, true);
    }
    this.#values = values;
    this.#reportUnreadable(this.#unreadable.size);
  }

  /** Sets one entry to what the store holds of it now (undefined: it is gone). */
  update(ref: KvmEntryRef, entry: KvmEntry | undefined): void {
    const id = keyOf(ref.scope, ref.mapName, ref.key);
    const held = entry && this.#readable(entry);
    if (held) this.#values.set(id, held);
    else this.#values.delete(id);
    this.#markUnreadable(ref, entry !== undefined && !held);
    if (entry && !held) this.#reportUnreadable(1);
  }

  /** Marks the entry `ref` as one this replica cannot read, or no longer. */
  #markUnreadable(ref: KvmEntryRef, unreadable: boolean): void {
    const id = keyOf(ref.scope, ref.mapName, ref.key);
    if (unreadable === this.#unreadable.has(id)) return;
    const n = (this.#unreadableByMap.get(ref.mapName) ?? 0) + (unreadable ? 1 : -1);
    if (unreadable) this.#unreadable.add(id);
    else this.#unreadable.delete(id);
    if (n > 0) this.#unreadableByMap.set(ref.mapName, n);
    else this.#unreadableByMap.delete(ref.mapName);
  }

  /** @throws UnreadableKvmEntryError for an entry encrypted under a key this replica does not have. */
  get(scope: string, map: string, key: string): string | undefined {
    const id = keyOf(scope, map, key);
    const held = this.#values.get(id);
    if (held === undefined && this.#unreadable.has(id)) throw new UnreadableKvmEntryError(`the entry is encrypted and ${KVM_KEY_ENV} is unset or is not the key it was written with`);
    return held?.value;
  }

  /** How many entries this replica cannot read (tollgate_kvm_unreadable_entries). */
  get unreadableEntries(): number {
    return this.#unreadable.size;
  }

  /**
   * The store decides, in one transaction, whether the map exists (the files', or the admin API's as stored now) and
   * whether to write: this replica's memory may not have heard of another replica's write, or of the map's delete.
   * @throws Error when no map of this name is declared (the admin API could neither list nor delete its entries), or
   * it is encrypted and TOLLGATE_KVM_KEY is unset; with TimeoutError after KVM_PUT_TIMEOUT_MS, the put then rolled
   * back if it has not reached its COMMIT, and held here once that COMMIT goes through.
   */
  async put(scope: string, map: string, key: string, value: string, override: boolean): Promise<void> {
    const givenUp = new AbortController();
    const storing = this.#db.transaction(async (tx) => {
      const encrypted = this.#fileMaps.get(map) ?? (await tx.kvm.storedMap(map))?.encrypted;
      if (encrypted === undefined) throw new Error(`no key-value map named "${map}" is declared (in --config files or through the admin API)`);
      if (encrypted && !this.#cipher) throw new Error(`map ${map} is encrypted and ${KVM_KEY_ENV} is unset`);
      if (encrypted && this.#unreadableByMap.has(map)) throw new Error(otherKeyProblem(map));
      const input = { scope: scope as KvmScope, mapName: map, key, value: encrypted ? this.#cipher!.encrypt(value) : value, encrypted };
      // Either way the entry holds `value` now, unless override: false kept another.
      if (override) await tx.kvm.putFromPolicy(input, (e) => e.encrypted === encrypted && this.#readable(e)?.value === value);
      else if (!(await tx.kvm.addFromPolicy(input))) return undefined;
      return { value, encrypted };
    }, givenUp.signal);
    const hold = (stored: Held | undefined) => {
      if (!stored) return;
      this.#values.set(keyOf(scope, map, key), stored);
      // This replica skips its own change's notice: the entry it wrote, it can read.
      this.#markUnreadable({ scope, mapName: map, key }, false);
    };
    try {
      hold(await withTimeout(storing, KVM_PUT_TIMEOUT_MS, 'storing the entry'));
    } catch (err) {
      givenUp.abort(err);
      // A COMMIT already sent when the request gave up may still go through (a slow fsync or standby): other replicas
      // then read the entry on its NOTIFY, while this one skips its own change, taking the put to hold the value
      // already. A COMMIT whose outcome stays unknown rejects, and makes the store tell of a change of everything.
      void storing.then(hold, () => {});
      throw err;
    }
  }

  #readable(e: KvmEntry): Held | undefined {
    if (!e.encrypted) return { value: e.value, encrypted: false };
    if (!this.#cipher) return undefined;
    try {
      return { value: this.#cipher.decrypt(e.value), encrypted: true };
    } catch {
      return undefined;
    }
  }

  #reportUnreadable(entries: number): void {
    if (entries > 0) this.#logger.error({ entries }, `encrypted KVM entries cannot be read: ${KVM_KEY_ENV} is unset or is not the key they were written with`);
  }
}
