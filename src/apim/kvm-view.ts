// Key-value maps as policies see them: every entry decrypted into memory, so a read is a map lookup; writes go to the
// store (encrypted when the map is) and show at once on this replica. One view serves every engine API management
// builds, so a change of entries alone updates it without rebuilding the policies.
import type { KeyValueMapSpec } from '../config/apim-kinds.js';
import type { Manifest } from '../config/manifest.js';
import type { Logger } from '../lib/logger.js';
import type { KvmLookup } from '../policy/index.js';
import type { Database, KvmEntry, KvmEntryRef, KvmScope, Snapshot } from '../store/index.js';
import { KVM_KEY_ENV, type KvmCipher } from './kvm-cipher.js';

/** One id per entry (scope, map, key), for maps of entries: the view's values, the entries a change names. */
export const keyOf = (scope: string, map: string, key: string) => `${scope}\u0000${map}\u0000${key}`;

/** A value as this replica holds it: decrypted, with how the store holds it. */
interface Held {
  value: string;
  encrypted: boolean;
}

/** Names of the maps declared encrypted, in --config files or through the admin API. */
export function encryptedMaps(fileManifests: readonly Manifest[], snapshot: Snapshot): Set<string> {
  const out = new Set<string>();
  for (const m of fileManifests) if (m.kind === 'KeyValueMap' && (m.spec as KeyValueMapSpec).encrypted) out.add(m.metadata.name);
  for (const m of snapshot.manifests) if (m.kind === 'KeyValueMap' && m.spec.encrypted === true) out.add(m.name);
  return out;
}

export class KvmView implements KvmLookup {
  #values = new Map<string, Held>();
  #encrypted: ReadonlySet<string> = new Set();
  readonly #cipher: KvmCipher | null;
  readonly #db: Database;
  readonly #logger: Logger;

  constructor(cipher: KvmCipher | null, db: Database, logger: Logger) {
    this.#cipher = cipher;
    this.#db = db;
    this.#logger = logger;
  }

  /** The maps a put encrypts: those of the configuration the installed policies were built from. */
  useEncrypted(maps: ReadonlySet<string>): void {
    this.#encrypted = maps;
  }

  /** Replaces every value with what the store holds (a reload). */
  load(entries: readonly KvmEntry[]): void {
    const values = new Map<string, Held>();
    let unreadable = 0;
    for (const e of entries) {
      const held = this.#readable(e);
      if (held) values.set(keyOf(e.scope, e.mapName, e.key), held);
      else unreadable++;
    }
    this.#values = values;
    this.#reportUnreadable(unreadable);
  }

  /** Sets one entry to what the store holds of it now (undefined: it is gone). */
  update(ref: KvmEntryRef, entry: KvmEntry | undefined): void {
    const id = keyOf(ref.scope, ref.mapName, ref.key);
    const held = entry && this.#readable(entry);
    if (held) this.#values.set(id, held);
    else this.#values.delete(id);
    if (entry && !held) this.#reportUnreadable(1);
  }

  get(scope: string, map: string, key: string): string | undefined {
    return this.#values.get(keyOf(scope, map, key))?.value;
  }

  async put(scope: string, map: string, key: string, value: string): Promise<void> {
    const encrypted = this.#encrypted.has(map);
    const id = keyOf(scope, map, key);
    const held = this.#values.get(id);
    // A flow that puts the same value on every request (the app's last model, say) writes nothing after the first.
    if (held?.value === value && held.encrypted === encrypted) return;
    if (encrypted && !this.#cipher) throw new Error(`map ${map} is encrypted and ${KVM_KEY_ENV} is unset`);
    await this.#db.kvm.putFromPolicy({ scope: scope as KvmScope, mapName: map, key, value: encrypted ? this.#cipher!.encrypt(value) : value, encrypted });
    this.#values.set(id, { value, encrypted });
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
