// Building the policies each ApimTemplate lists, with the compiled condition of the entry that lists them.
import type { ApimTemplateSpec } from '../config/apim-kinds.js';
import type { Manifest } from '../config/manifest.js';
import { compileCondition, type Condition } from './condition.js';
import type { PolicyRegistry } from './registry.js';
import type { Policy, PolicyDeps } from './types.js';

/** A policy as a template lists it: it runs only when its entry's condition holds (always, without one). */
export interface TemplatePolicy {
  policy: Policy;
  condition: Condition | null;
  /** Where the policy is declared, for problems found after its factory ran. */
  origin: string;
}

export const where = (m: Manifest): string => `${m.source} document ${m.index} (${m.kind}/${m.metadata.name})`;

/** `unknown policy kind "Javascript" (known: VerifyAPIKey, ...)`: a template entry's or a rule's kind the registry lacks. */
export const unknownPolicyKind = (kind: string, registry: PolicyRegistry): string => `unknown policy kind "${kind}" (known: ${registry.kinds().join(', ')})`;

function problemOf(err: unknown): string {
  const issues = (err as { issues?: { path: PropertyKey[]; message: string }[] }).issues;
  if (!issues) return `spec: ${(err as Error).message}`;
  return issues.map((i) => `spec.${i.path.map(String).join('.')}: ${i.message}`).join('; ');
}

/**
 * Each ApimTemplate's policies in order, by template name. A policy may be listed once across all templates.
 * Problems (unknown kinds, missing policies, bad specs, bad conditions) are pushed to `problems`.
 */
export function buildTemplates(manifests: readonly Manifest[], registry: PolicyRegistry, deps: PolicyDeps, problems: string[]): Map<string, TemplatePolicy[]> {
  const docs = new Map<string, Manifest>();
  for (const m of manifests) if (registry.get(m.kind)) docs.set(`${m.kind}/${m.metadata.name}`, m);
  const seen = new Map<string, string>();
  const out = new Map<string, TemplatePolicy[]>();
  // The known kinds in the first unknown-kind problem only: a template listing 350,000 refs to an unknown kind
  // repeated them in each, 173 MB of problems.
  let kindsListed = false;
  const unknownKind = (kind: string): string => {
    if (kindsListed) return `unknown policy kind "${kind}" (known: as listed above)`;
    kindsListed = true;
    return unknownPolicyKind(kind, registry);
  };
  for (const m of manifests) {
    if (m.kind !== 'ApimTemplate') continue;
    const listed: TemplatePolicy[] = [];
    out.set(m.metadata.name, listed);
    for (const [ti, template] of (m.spec as ApimTemplateSpec).templates.entries()) {
      let condition: Condition | null = null;
      if (template.condition !== undefined) {
        try {
          condition = compileCondition(template.condition);
        } catch (err) {
          problems.push(`${where(m)}: spec.templates[${ti}].condition: ${(err as Error).message}`);
        }
      }
      for (const [pi, ref] of template.policies.entries()) {
        const at = `${where(m)}: spec.templates[${ti}].policies[${pi}]`;
        const factory = registry.get(ref.kind);
        const id = `${ref.kind}/${ref.name}`;
        const doc = docs.get(id);
        const prev = seen.get(id);
        if (!factory) problems.push(`${at}.kind: ${unknownKind(ref.kind)}`);
        else if (!doc) problems.push(`${at}.name: no ${ref.kind} named "${ref.name}"`);
        else if (prev) problems.push(`${at}: ${id} is already listed at ${prev}`);
        else {
          seen.set(id, at);
          try {
            listed.push({ policy: factory(ref.name, doc.spec, deps), condition, origin: where(doc) });
          } catch (err) {
            problems.push(`${where(doc)}: ${problemOf(err)}`);
          }
        }
      }
    }
  }
  return out;
}
