// Governance over ApimTemplates: which policy kinds each template must, may and must not list (ApimTemplateRule),
// and product template references that resolve. Pure functions over plain facts, so apply and config loading agree.
import type { ApiProductSpec, ApimTemplateRuleSpec, ApimTemplateSpec } from './apim-kinds.js';
import type { Manifest } from './manifest.js';

export interface TemplateFacts {
  name: string;
  /** spec.apimTemplateRule.name, when the template names its rule. */
  rule?: string;
  /** The policy kinds it lists, over all its entries. */
  kinds: readonly string[];
  /** Those of them listed in an entry without a condition (absent: all of them). */
  always?: readonly string[];
}

export interface RuleFacts {
  name: string;
  requiredList: readonly string[];
  denyList: readonly string[];
  /** Absent: any kind not denied is allowed. */
  allowList?: readonly string[];
}

export interface ProductFacts {
  name: string;
  templateRefs: readonly string[];
}

export interface GovernanceFacts {
  templates: readonly TemplateFacts[];
  rules: readonly RuleFacts[];
  products: readonly ProductFacts[];
}

export interface Violation {
  /** What breaks the rule or names what is missing: `ApimTemplate/t` or `APIProduct/p`. */
  subject: string;
  /** The rule broken, when a rule is. */
  rule?: string;
  message: string;
}

const kindsOf = (list: { kind: string }[] | undefined) => (list ?? []).map((e) => e.kind);

/** The facts the checker needs from manifests (every kind but ApimTemplate, ApimTemplateRule and APIProduct is ignored). */
export function governanceFacts(manifests: readonly Manifest[]): GovernanceFacts {
  const templates: TemplateFacts[] = [];
  const rules: RuleFacts[] = [];
  const products: ProductFacts[] = [];
  for (const m of manifests) {
    if (m.kind === 'ApimTemplate') {
      const s = m.spec as ApimTemplateSpec;
      templates.push({
        name: m.metadata.name,
        rule: s.apimTemplateRule?.name,
        kinds: s.templates.flatMap((t) => t.policies.map((p) => p.kind)),
        always: s.templates.flatMap((t) => (t.condition === undefined ? t.policies.map((p) => p.kind) : [])),
      });
    } else if (m.kind === 'ApimTemplateRule') {
      const s = m.spec as ApimTemplateRuleSpec;
      rules.push({ name: m.metadata.name, requiredList: kindsOf(s.requiredList), denyList: kindsOf(s.denyList), ...(s.allowList && { allowList: kindsOf(s.allowList) }) });
    } else if (m.kind === 'APIProduct') {
      const refs = (m.spec as ApiProductSpec).templateRefs;
      if (refs) products.push({ name: m.metadata.name, templateRefs: refs.map((r) => r.name) });
    }
  }
  return { templates, rules, products };
}

/**
 * How one template fares against one rule: a message per policy kind that breaks it. A required kind must run for
 * every request the template covers: listed only under a condition (`condition: "false"`), it does not count.
 */
export function ruleBreaches(kinds: readonly string[], rule: RuleFacts, always: readonly string[] = kinds): string[] {
  const listed = new Set(kinds);
  const unconditional = new Set(always);
  const out: string[] = [];
  for (const kind of rule.denyList) if (listed.has(kind)) out.push(`${kind} is on the denyList`);
  for (const kind of rule.requiredList) {
    if (!listed.has(kind)) out.push(`${kind} is on the requiredList but not in the template`);
    else if (!unconditional.has(kind)) out.push(`${kind} is on the requiredList but listed only under a condition`);
  }
  if (rule.allowList) {
    const allowed = new Set(rule.allowList);
    for (const kind of listed) if (!allowed.has(kind)) out.push(`${kind} is not on the allowList`);
  }
  return out;
}

/** The rules no template names: each binds every template (organization-wide). */
export function organizationWideRules(facts: GovernanceFacts): RuleFacts[] {
  const named = new Set(facts.templates.flatMap((t) => (t.rule ? [t.rule] : [])));
  return facts.rules.filter((r) => !named.has(r.name));
}

/**
 * The templates of a change that would name a rule which, before it, bound every template. A named rule binds only
 * the templates naming it, so one compliant template naming an organization-wide rule would release every other
 * template from it (a JavaScript template past a rule denying JavaScript, with no violation shown): a change may
 * widen what a rule binds (delete the last template naming it) but not narrow it. A rule created in the same change
 * as the templates naming it was not binding anything before, so it narrows nothing.
 * @example narrowedRules(governanceFacts(stored), governanceFacts(applied).templates) → [{ subject: 'ApimTemplate/decoy', rule: 'org', message: 'ApimTemplate/decoy names ApimTemplateRule/org, which no template names, ...' }]
 */
export function narrowedRules(before: GovernanceFacts, changed: readonly TemplateFacts[]): Violation[] {
  const orgWide = new Set(organizationWideRules(before).map((r) => r.name));
  const out: Violation[] = [];
  for (const t of changed) {
    if (t.rule === undefined || !orgWide.has(t.rule)) continue;
    out.push({
      subject: `ApimTemplate/${t.name}`,
      rule: t.rule,
      message: `ApimTemplate/${t.name} names ApimTemplateRule/${t.rule}, which no template names, so it binds every template; naming it would make it bind only the templates naming it and release every other template from it. Leave spec.apimTemplateRule out (the rule binds this template anyway), or name a rule of its own`,
    });
  }
  return out;
}

/**
 * Every violation in a set of templates, rules and products. A template answers to the rule it names and to every
 * rule that no template names (those are organization-wide; a change may not narrow them: narrowedRules).
 * @example checkGovernance(governanceFacts(manifests)) → [{ subject: 'ApimTemplate/t', rule: 'r', message: 'ApimTemplate/t breaks ApimTemplateRule/r: JavaScript is on the denyList' }]
 */
export function checkGovernance(facts: GovernanceFacts): Violation[] {
  const rules = new Map(facts.rules.map((r) => [r.name, r]));
  const orgWide = organizationWideRules(facts);
  const out: Violation[] = [];
  for (const t of facts.templates) {
    const subject = `ApimTemplate/${t.name}`;
    const applicable = [...orgWide];
    if (t.rule) {
      const own = rules.get(t.rule);
      if (own) applicable.unshift(own);
      else out.push({ subject, rule: t.rule, message: `${subject} names ApimTemplateRule/${t.rule}, which does not exist` });
    }
    for (const rule of applicable) {
      for (const breach of ruleBreaches(t.kinds, rule, t.always)) out.push({ subject, rule: rule.name, message: `${subject} breaks ApimTemplateRule/${rule.name}: ${breach}` });
    }
  }
  const templates = new Set(facts.templates.map((t) => t.name));
  for (const p of facts.products) {
    for (const ref of p.templateRefs) {
      if (!templates.has(ref)) out.push({ subject: `APIProduct/${p.name}`, message: `APIProduct/${p.name} names ApimTemplate/${ref}, which does not exist` });
    }
  }
  return out;
}
