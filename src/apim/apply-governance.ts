// Template rules at apply time: the documents being applied, over what is already stored and what --config files
// declare, checked as one set. Templates and products being applied that break a rule are refused; violations of
// objects applied earlier (a rule changed under them) are reported in the answer. An apply may widen what an
// organization-wide rule or a gateway-wide template covers, never narrow it: that is refused too.
import { checkGovernance, governanceFacts, narrowedRules } from '../config/governance.js';
import { validateDocument, type Manifest } from '../config/manifest.js';
import { narrowedTemplates } from '../policy/template-scope.js';
import type { StoreView } from '../store/index.js';
import type { ApimAdminDeps } from './admin-deps.js';
import { invalid } from './admin-input.js';
import type { ApimDocument } from './manifest-documents.js';

const GOVERNED = new Set(['ApimTemplate', 'ApimTemplateRule', 'APIProduct']);

export interface GovernanceOutcome {
  /** Violations by documents of this apply: `[i]` and the message naming rule and policy. */
  refused: { path: string; message: string }[];
  /** Violations by objects applied before, e.g. because this apply changed a rule. */
  reported: string[];
}

/** The governed objects as the admin API stored them (file-owned ones are in the files' manifests; only products naming templates matter). */
async function storedManifests(store: StoreView): Promise<Manifest[]> {
  const raws: { kind: string; name: string; apiVersion: string; spec: unknown }[] = [];
  for (const m of await store.manifests.listAll()) if (GOVERNED.has(m.kind) && m.owner !== 'file') raws.push(m);
  for (const p of await store.products.listAll()) {
    if (p.owner !== 'file' && p.spec.templateRefs !== undefined) raws.push({ kind: 'APIProduct', name: p.name, apiVersion: 'apim.googleapis.com/v1', spec: { ...p.spec, displayName: p.displayName || p.name } });
  }
  const out: Manifest[] = [];
  raws.forEach((r, i) => {
    const checked = validateDocument({ apiVersion: r.apiVersion, kind: r.kind, metadata: { name: r.name }, spec: r.spec }, 'admin-api', i);
    if (checked.manifest) out.push(checked.manifest);
  });
  return out;
}

/**
 * The template-rule outcome of applying `documents`.
 * @throws AdminError 400 when a document would narrow what an organization-wide rule or a gateway-wide template
 * covers (a template naming the rule, a product naming the template), whoever declared the rule or template.
 */
export async function checkApplyGovernance(store: StoreView, deps: ApimAdminDeps, documents: readonly ApimDocument[]): Promise<GovernanceOutcome> {
  const applying = new Map(documents.map((d) => [`${d.manifest.kind}/${d.manifest.metadata.name}`, d.index]));
  const current = [...(deps.fileManifests?.() ?? []).filter((m) => GOVERNED.has(m.kind)), ...(await storedManifests(store))];
  const applied = documents.map((d) => d.manifest);
  const narrowed = [
    ...narrowedRules(governanceFacts(current), governanceFacts(applied).templates).map((v) => ({ path: `[${applying.get(v.subject)}].spec.apimTemplateRule.name`, message: v.message })),
    ...narrowedTemplates(current, applied, (name) => deps.fileOwned('ApimTemplate', name)).map((n) => ({ path: `[${applying.get(`APIProduct/${n.product}`)}].spec.templateRefs[${n.ref}].name`, message: n.message })),
  ];
  if (narrowed.length > 0) throw invalid(`${documents.length === 1 ? 'this manifest' : 'these manifests'} would narrow what an organization-wide rule or a gateway-wide template covers (the details say how); nothing was applied`, narrowed);
  const combined = [...current.filter((m) => !applying.has(`${m.kind}/${m.metadata.name}`)), ...applied];
  const outcome: GovernanceOutcome = { refused: [], reported: [] };
  for (const v of checkGovernance(governanceFacts(combined))) {
    const i = applying.get(v.subject);
    if (i === undefined) outcome.reported.push(v.message);
    else outcome.refused.push({ path: `[${i}]`, message: v.message });
  }
  return outcome;
}
