// Key-value maps as policies see them: every entry decrypted into memory when the snapshot loads, so a read is a
// map lookup; writes go to the store (encrypted when the map is) and show at once on this replica.
import type { KeyValueMapSpec } from '../config/apim-kinds.js';
import type { Manifest } from '../config/manifest.js';
import type { Logger } from '../lib/logger.js';
import type { KvmLookup } from '../policy/index.js';
import type { Database, KvmScope, Snapshot } from '../store/index.js';
import { KVM_KEY_ENV, type KvmCipher } from './kvm-cipher.js';

const keyOf = (scope: string, map: string, key: string) => `${scope}\u0000${map}\u0000${key}`;

/** Names of the maps declared encrypted, in --config files or through the admin API. */
export function encryptedMaps(fileManifests: readonly Manifest[], snapshot: Snapshot): Set<string> {
  const out = new Set<string>();
  for (const m of fileManifests) if (m.kind === 'KeyValueMap' && (m.spec as KeyValueMapSpec).encrypted) out.add(m.metadata.name);
  for (const m of snapshot.manifests) if (m.kind === 'KeyValueMap' && m.spec.encrypted === true) out.add(m.name);
  return out;
}

export class KvmView implements KvmLookup {
  readonly #values = new Map<string, string>();
  readonly #encrypted: ReadonlySet<string>;
  readonly #cipher: KvmCipher | null;
  readonly #db: Database;

  constructor(snapshot: Snapshot, encrypted: ReadonlySet<string>, cipher: KvmCipher | null, db: Database, logger: Logger) {
    this.#encrypted = encrypted;
    this.#cipher = cipher;
    this.#db = db;
    let unreadable = 0;
    for (const e of snapshot.kvmEntries) {
      if (!e.encrypted) this.#values.set(keyOf(e.scope, e.mapName, e.key), e.value);
      else if (!cipher) unreadable++;
      else {
        try {
          this.#values.set(keyOf(e.scope, e.mapName, e.key), cipher.decrypt(e.value));
        } catch {
          unreadable++;
        }
      }
    }
    if (unreadable > 0) logger.error({ entries: unreadable }, `encrypted KVM entries cannot be read: ${KVM_KEY_ENV} is unset or is not the key they were written with`);
  }

  get(scope: string, map: string, key: string): string | undefined {
    return this.#values.get(keyOf(scope, map, key));
  }

  async put(scope: string, map: string, key: string, value: string): Promise<void> {
    const encrypted = this.#encrypted.has(map);
    if (encrypted && !this.#cipher) throw new Error(`map ${map} is encrypted and ${KVM_KEY_ENV} is unset`);
    await this.#db.kvm.put({ scope: scope as KvmScope, mapName: map, key, value: encrypted ? this.#cipher!.encrypt(value) : value, encrypted });
    this.#values.set(keyOf(scope, map, key), value);
  }
}
