// KeyValueMapOperations: reads entries of a key-value map into flow variables (`{kvm.tier}` for later policies)
// and writes entries, in the environment's scope or the entitled product's. Reads come from memory, never the DB.
import { keyValueMapOperationsSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { policyFault } from '../../../gateway/errors.js';
import { isStorableText, kvmKeyProblem, MAX_KVM_VALUE_BYTES, UNSTORABLE_TEXT_MESSAGE } from '../../../store/index.js';
import { compileTemplate } from '../../message-template.js';
import type { ApimState, Policy, PolicyFactory } from '../../types.js';
import { isFlowVariableName, setVariable } from '../../variables.js';

export const KEY_VALUE_MAP_OPERATIONS = 'key-value-map-operations';

export const KEY_VALUE_MAP_OPERATIONS_FAULTS = {
  setVariableFailed: 'steps.keyvaluemapoperations.SetVariableFailed',
} as const;

/** Why the admin API could never manage an entry of this key again (kvmKeyProblem, or text it cannot store). */
function unaddressable(key: string): string | undefined {
  const problem = kvmKeyProblem(key);
  if (problem) return `its key ${problem}`;
  if (!isStorableText(key)) return `its key ${UNSTORABLE_TEXT_MESSAGE}`;
}

/**
 * @example keyValueMapOperations('tier-of-app', { mapIdentifier: 'tiers', get: [{ assignTo: 'kvm.tier',
 *   key: '{developer.app.id}', defaultValue: 'free' }] }, deps) — later: {ref: kvm.tier}
 */
export const keyValueMapOperations: PolicyFactory = (name, spec, deps) => {
  const s = keyValueMapOperationsSpec.parse(spec);
  const kvm = deps.kvm;
  if (!kvm) throw new Error('key-value maps need the API-management store, which this engine was built without');
  s.get.forEach((g, i) => {
    if (!isFlowVariableName(g.assignTo)) throw new Error(`get[${i}].assignTo: "${g.assignTo}" must be a dotted flow variable name such as kvm.tier`);
  });
  const map = s.mapIdentifier;
  const gets = s.get.map((g) => ({ variable: g.assignTo, key: compileTemplate(g.key), fallback: g.defaultValue }));
  const puts = s.put.map((p) => ({ key: compileTemplate(p.key), value: compileTemplate(p.value), override: p.override }));
  // Product-scoped maps hold one set of entries per product: the one the request is entitled through.
  const scopeOf = (state: ApimState): string | undefined =>
    s.scope === 'environment' ? 'environment' : state.product ? `apiproduct:${state.product.name}` : undefined;

  const refused = (why: string) => policyFault(400, KEY_VALUE_MAP_OPERATIONS_FAULTS.setVariableFailed, `Could not store an entry of ${map}: ${why}`);
  const write = async (ctx: RequestContext, state: ApimState, scope: string): Promise<void> => {
    for (const p of puts) {
      const { value: key, unresolved } = p.key.render(ctx, state);
      // As Apigee's put of a key whose variable is missing fails: rendered without it, every such request would share
      // one entry (`""` for a key that is only the variable).
      if (unresolved.length > 0) throw refused(`its key's variable ${unresolved[0]} is unresolved`);
      // An entry the admin API could never read, change or delete again (from the request: a header `..`, a NUL).
      const why = unaddressable(key);
      if (why) throw refused(why);
      const value = p.value.render(ctx, state).value;
      if (!isStorableText(value)) throw refused(`its value ${UNSTORABLE_TEXT_MESSAGE}`);
      if (Buffer.byteLength(value) > MAX_KVM_VALUE_BYTES) throw refused(`its value is longer than ${MAX_KVM_VALUE_BYTES} bytes`);
      try {
        // The store, not this replica's memory, decides whether an entry exists (override: false) or already holds it.
        await kvm.put(scope, map, key, value, p.override);
      } catch (err) {
        throw policyFault(500, KEY_VALUE_MAP_OPERATIONS_FAULTS.setVariableFailed, `Could not store ${map}/${key}: ${(err as Error).message}`);
      }
    }
  };

  return {
    type: KEY_VALUE_MAP_OPERATIONS,
    name,
    admit(ctx, state) {
      const scope = scopeOf(state);
      // No product, no product entries: a get finds nothing, as for a missing key, so its default still applies
      // (a later `{kvm.tier}` would otherwise fault); a put has nowhere to go.
      for (const g of gets) {
        const key = g.key.render(ctx, state).value;
        let stored: string | undefined;
        try {
          stored = scope === undefined ? undefined : kvm.get(scope, map, key);
        } catch (err) {
          // An entry that exists but cannot be read (encrypted under another key) fails the request: its default
          // served instead hid a lost secret behind answers that looked right.
          throw policyFault(500, KEY_VALUE_MAP_OPERATIONS_FAULTS.setVariableFailed, `Could not read ${map}/${key}: ${(err as Error).message}`);
        }
        const value = stored ?? g.fallback;
        if (value !== undefined) setVariable(state, g.variable, value);
      }
      if (scope !== undefined && puts.length > 0) return write(ctx, state, scope);
    },
  } satisfies Policy;
};
