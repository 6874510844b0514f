// Key-value maps at apply time, held to what POST /v1/keyvaluemaps holds them to: an encrypted map needs
// TOLLGATE_KVM_KEY, and a map's encryption is set when it is made (as in Apigee). Its entries are stored one way or
// the other: turned on over plaintext entries, the map was called encrypted while they stayed readable at rest; turned
// off, the admin API showed ciphertext as values.
import type { KeyValueMapSpec } from '../config/apim-kinds.js';
import { storedMapEncrypted, type StoreView } from '../store/index.js';
import type { FieldProblem } from './admin-input.js';
import { KVM_KEY_ENV, type KvmCipher } from './kvm-cipher.js';
import type { ApimDocument } from './manifest-documents.js';

/** Why an encrypted map cannot be made (POST and apply alike). */
export const NO_KVM_KEY = `${KVM_KEY_ENV} is not set on the gateway`;

/** The KeyValueMap documents of an apply that would make an encrypted map without the key, or change a map's encryption. */
export async function kvmMapProblems(store: StoreView, documents: readonly ApimDocument[], cipher: KvmCipher | null): Promise<FieldProblem[]> {
  const problems: FieldProblem[] = [];
  for (const doc of documents) {
    if (doc.manifest.kind !== 'KeyValueMap') continue;
    const { encrypted } = doc.manifest.spec as KeyValueMapSpec;
    const stored = await store.manifests.find('KeyValueMap', doc.manifest.metadata.name);
    const path = `[${doc.index}].spec.encrypted`;
    if (!stored) {
      if (encrypted && !cipher) problems.push({ path, message: NO_KVM_KEY });
    } else if (storedMapEncrypted(stored.spec) !== encrypted) {
      const was = encrypted ? 'not encrypted' : 'encrypted';
      problems.push({ path, message: `the map is ${was}, which is set when it is made: delete it (its entries go with it) and make it again` });
    }
  }
  return problems;
}
