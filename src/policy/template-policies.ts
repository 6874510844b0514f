// Building every declared policy (once), and the policies each ApimTemplate lists, with the compiled condition of the
// entry that lists them.
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

/** Where the admin API stored a manifest (config/manifest.ts `source`); everything else came from --config files. */
export const FROM_ADMIN_API = 'admin-api';

export interface BuiltTemplates {
  /** Each ApimTemplate's policies in order, by template name. */
  templates: Map<string, TemplatePolicy[]>;
  /**
   * Why policies the admin API stored, and no template lists, cannot be built. They run nowhere, so a load logs these
   * rather than refuse (a GenerateJWT's `{env}` secret unset at this start must not stop every request), while an
   * apply refuses them, as it refuses any policy it could not build.
   */
  unlisted: string[];
}

const idOf = (m: Manifest): string => `${m.kind}/${m.metadata.name}`;

/**
 * Each ApimTemplate's policies in order, by template name. A policy may be listed once across all templates.
 * Every policy declared is built, once, listed or not: what its factory checks (a file it reads, a pattern RE2 must
 * run, a secret in the environment) is refused by the load or apply that brings it, not by the later change that
 * lists it. Building starts nothing (Policy.start). Problems (unknown kinds, missing policies, bad specs, bad
 * conditions) are pushed to `problems`, but those of unlisted admin-API policies go to `unlisted`.
 */
export function buildTemplates(manifests: readonly Manifest[], registry: PolicyRegistry, deps: PolicyDeps, problems: string[]): BuiltTemplates {
  const docs = new Map<string, Manifest>();
  for (const m of manifests) if (registry.get(m.kind)) docs.set(idOf(m), m);
  const seen = new Map<string, string>();
  const listings: { template: string; id: string; condition: Condition | null }[] = [];
  const templates = new Map<string, TemplatePolicy[]>();
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
    templates.set(m.metadata.name, []);
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
        const id = `${ref.kind}/${ref.name}`;
        const prev = seen.get(id);
        if (!registry.get(ref.kind)) problems.push(`${at}.kind: ${unknownKind(ref.kind)}`);
        else if (!docs.has(id)) problems.push(`${at}.name: no ${ref.kind} named "${ref.name}"`);
        else if (prev) problems.push(`${at}: ${id} is already listed at ${prev}`);
        else {
          seen.set(id, at);
          listings.push({ template: m.metadata.name, id, condition });
        }
      }
    }
  }
  const built = new Map<string, Policy>();
  const unlisted: string[] = [];
  for (const [id, doc] of docs) {
    try {
      built.set(id, registry.get(doc.kind)!(doc.metadata.name, doc.spec, deps));
    } catch (err) {
      (seen.has(id) || doc.source !== FROM_ADMIN_API ? problems : unlisted).push(`${where(doc)}: ${problemOf(err)}`);
    }
  }
  for (const { template, id, condition } of listings) {
    const policy = built.get(id);
    if (policy) templates.get(template)!.push({ policy, condition, origin: where(docs.get(id)!) });
  }
  return { templates, unlisted };
}
