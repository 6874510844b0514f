// Compiling validated manifests into the runtime configuration the hot path reads: lookups by name,
// weighted draws and per-model settings computed once per load, cross-references checked.
import { WeightedDraw } from '../lib/weighted.js';
import { pickerConfigProblems } from '../scheduler/compile-picker-config.js';
import { ConfigError, type Manifest } from './manifest.js';
import { DEFAULT_SETTINGS, type GatewaySettings } from './settings.js';
import type {
  EndpointPickerConfigSpec,
  HttpRouteSpec,
  InferenceModelRewriteSpec,
  InferenceModelSpec,
  InferenceObjectiveSpec,
  InferencePoolSpec,
} from './inference-kinds.js';

export interface EndpointConfig {
  /** Origin URL, e.g. http://10.0.0.5:8000 */
  url: string;
  /**
   * ip:port, the form the Inference Extension's protocol uses (Envoy's destination, its subset hints). Compiled as the
   * URL's host:port; a host name's is set to the address it resolves to, and kept current, by EndpointAddresses.
   */
  address: string;
}

export interface PoolConfig {
  name: string;
  endpoints: EndpointConfig[];
  engine: InferencePoolSpec['engine'];
  picker?: EndpointPickerConfigSpec;
}

export const CRITICALITY_PRIORITY = { Critical: 1, Standard: 0, Sheddable: -1 } as const;

export interface ModelConfig {
  name: string;
  pool: PoolConfig;
  priority: number;
  criticality: keyof typeof CRITICALITY_PRIORITY;
  /** The model name sent upstream; null keeps the requested name. */
  target: WeightedDraw<string> | null;
  firstByteTimeoutMs: number;
  responseTimeoutMs: number;
}

/** A URL backend's `address` is the picker protocol's <ip:port> (EndpointConfig), its scheme's port when the URL names none. */
export type RouteBackend = { kind: 'pool'; pool: PoolConfig } | { kind: 'url'; url: string; address: string };

export interface RouteRule {
  route: string;
  /** The route's hostnames (exact, or `*.suffix`); empty: every host. */
  hostnames: readonly string[];
  matches: { path?: { type: 'PathPrefix' | 'Exact'; value: string }; headers?: { name: string; value: string }[]; method?: string }[];
  /**
   * null when every backendRef has weight 0: Gateway API sends such a rule's traffic nowhere (implementations answer
   * 500 or 503), so it is refused rather than left to match the next rule or the model name.
   */
  backends: WeightedDraw<RouteBackend> | null;
}

export interface RuntimeConfig {
  settings: GatewaySettings;
  pools: Map<string, PoolConfig>;
  /**
   * The models by the name clients send, one per pool that serves the name, in the files' order: an InferenceModel
   * belongs to its pool, as in the Inference Extension, so an HTTPRoute may split a name across pools (a canary).
   */
  models: Map<string, ModelConfig[]>;
  objectives: Map<string, { priority: number; pool: string }>;
  routes: RouteRule[];
  /** The pools an HTTPRoute's backendRef names (at any weight): reached through routes only, never by model name. */
  routedPools: ReadonlySet<PoolConfig>;
  manifests: Manifest[];
}

/** The port a URL names, or its scheme's. */
function portOf(u: URL): string {
  return u.port || (u.protocol === 'https:' ? '443' : '80');
}

function endpointsOf(spec: InferencePoolSpec): EndpointConfig[] {
  const out: EndpointConfig[] = [];
  for (const raw of spec.endpoints) {
    const u = new URL(raw);
    // The URL's own port wins; otherwise each targetPort makes one endpoint on that host.
    const ports = u.port || !spec.targetPorts ? [portOf(u)] : spec.targetPorts.map((p) => String(p.number));
    for (const port of ports) {
      const origin = `${u.protocol}//${u.hostname}:${port}`;
      out.push({ url: origin, address: `${u.hostname}:${port}` });
    }
  }
  return out;
}

/** Every model server `config` sends requests to: its pools' endpoints, then its HTTPRoutes' URL backends. */
export function* upstreamEndpoints(config: Pick<RuntimeConfig, 'pools' | 'routes'>): Iterable<EndpointConfig> {
  for (const pool of config.pools.values()) yield* pool.endpoints;
  for (const route of config.routes) for (const b of route.backends?.values ?? []) if (b.kind === 'url') yield b;
}

/** compileConfig(manifests) → RuntimeConfig, or ConfigError listing every cross-reference problem. */
export function compileConfig(manifests: Manifest[]): RuntimeConfig {
  const problems: string[] = [];
  const where = (m: Manifest) => `${m.source} document ${m.index} (${m.kind}/${m.metadata.name})`;

  const seen = new Map<string, Manifest>();
  for (const m of manifests) {
    const key = `${m.kind}/${m.metadata.name}`;
    const prev = seen.get(key);
    if (prev) problems.push(`${where(m)}: metadata.name: duplicate ${key}, also defined in ${prev.source} document ${prev.index}`);
    else seen.set(key, m);
  }
  const ofKind = <S>(kind: string) => manifests.filter((m) => m.kind === kind) as Manifest<S>[];

  const settingsDocs = ofKind<GatewaySettings>('GatewaySettings');
  if (settingsDocs.length > 1) problems.push(`${where(settingsDocs[1])}: kind: only one GatewaySettings may exist (first in ${settingsDocs[0].source})`);
  const settings = settingsDocs[0]?.spec ?? DEFAULT_SETTINGS;

  const pickerDocs = ofKind<EndpointPickerConfigSpec>('EndpointPickerConfig');
  // Plugin types and parameters are the picker's to check; refusing here keeps a bad config from half-applying.
  for (const d of pickerDocs) for (const p of pickerConfigProblems(d.spec)) problems.push(`${where(d)}: spec: ${p}`);
  // One config per pool, and one for the rest: with two, the first in file order would win without a word.
  const pickerFor = new Map<string | undefined, Manifest<EndpointPickerConfigSpec>>();
  for (const d of pickerDocs) {
    const pool = d.spec.poolRef?.name;
    const prev = pickerFor.get(pool);
    if (!prev) pickerFor.set(pool, d);
    else if (pool === undefined) problems.push(`${where(d)}: spec.poolRef: only one EndpointPickerConfig without a poolRef may exist (also ${where(prev)})`);
    else problems.push(`${where(d)}: spec.poolRef.name: pool "${pool}" already has an EndpointPickerConfig (${where(prev)})`);
  }
  const defaultPicker = pickerFor.get(undefined)?.spec;

  const pools = new Map<string, PoolConfig>();
  for (const m of ofKind<InferencePoolSpec>('InferencePool')) {
    const picker = pickerFor.get(m.metadata.name)?.spec ?? defaultPicker;
    pools.set(m.metadata.name, { name: m.metadata.name, endpoints: endpointsOf(m.spec), engine: m.spec.engine, picker });
  }
  for (const d of pickerDocs) {
    if (d.spec.poolRef && !pools.has(d.spec.poolRef.name)) problems.push(`${where(d)}: spec.poolRef.name: no InferencePool "${d.spec.poolRef.name}"`);
  }

  const objectives = new Map<string, { priority: number; pool: string }>();
  for (const m of ofKind<InferenceObjectiveSpec>('InferenceObjective')) {
    if (!pools.has(m.spec.poolRef.name)) problems.push(`${where(m)}: spec.poolRef.name: no InferencePool "${m.spec.poolRef.name}"`);
    objectives.set(m.metadata.name, { priority: m.spec.priority, pool: m.spec.poolRef.name });
  }

  // Rewrite rules by matched model name; a rule decides the target alone (DESIGN.md).
  const rewrites = new Map<string, { draw: WeightedDraw<string>; pool?: string; doc: Manifest }>();
  for (const m of ofKind<InferenceModelRewriteSpec>('InferenceModelRewrite')) {
    if (m.spec.poolRef && !pools.has(m.spec.poolRef.name)) problems.push(`${where(m)}: spec.poolRef.name: no InferencePool "${m.spec.poolRef.name}"`);
    m.spec.rules.forEach((rule, ri) => {
      const draw = new WeightedDraw(rule.targets.map((t) => ({ value: t.modelRewrite, weight: t.weight })));
      rule.matches.forEach((match, mi) => {
        const prev = rewrites.get(match.model.value);
        if (prev) problems.push(`${where(m)}: spec.rules[${ri}].matches[${mi}].model.value: "${match.model.value}" is already rewritten by ${where(prev.doc)}`);
        else rewrites.set(match.model.value, { draw, pool: m.spec.poolRef?.name, doc: m });
      });
    });
  }

  const models = new Map<string, ModelConfig[]>();
  const servedIn = (name: string, pool: PoolConfig) => models.get(name)?.some((mc) => mc.pool === pool) === true;
  const serve = (mc: ModelConfig) => {
    const same = models.get(mc.name);
    if (same) same.push(mc);
    else models.set(mc.name, [mc]);
  };
  const up = settings.upstream;
  for (const m of ofKind<InferenceModelSpec>('InferenceModel')) {
    const pool = pools.get(m.spec.poolRef.name);
    if (!pool) {
      problems.push(`${where(m)}: spec.poolRef.name: no InferencePool "${m.spec.poolRef.name}"`);
      continue;
    }
    if (servedIn(m.spec.modelName, pool)) {
      problems.push(`${where(m)}: spec.modelName: "${m.spec.modelName}" is already served by another InferenceModel of InferencePool "${pool.name}"`);
      continue;
    }
    const rewrite = rewrites.get(m.spec.modelName);
    // A rewrite for one pool's traffic cannot rewrite a model another pool serves: it would do so without a word.
    if (rewrite?.pool !== undefined && rewrite.pool !== pool.name) {
      problems.push(`${where(rewrite.doc)}: spec.poolRef.name: rewrites "${m.spec.modelName}" for InferencePool "${rewrite.pool}", but ${where(m)} serves it from "${pool.name}"`);
      continue;
    }
    const target = rewrite
      ? rewrite.draw
      : m.spec.targetModels
        ? new WeightedDraw(m.spec.targetModels.map((t) => ({ value: t.name, weight: t.weight })))
        : null;
    serve({
      name: m.spec.modelName,
      pool,
      priority: CRITICALITY_PRIORITY[m.spec.criticality],
      criticality: m.spec.criticality,
      target,
      firstByteTimeoutMs: m.spec.timeouts?.firstByte ?? up.firstByteTimeout,
      responseTimeoutMs: m.spec.timeouts?.response ?? up.responseTimeout,
    });
  }
  // A rewrite with a pool also makes its matched name servable without an InferenceModel.
  for (const [name, rw] of rewrites) {
    const pool = rw.pool === undefined ? undefined : pools.get(rw.pool);
    if (!pool || servedIn(name, pool)) continue;
    serve({
      name,
      pool,
      priority: 0,
      criticality: 'Standard',
      target: rw.draw,
      firstByteTimeoutMs: up.firstByteTimeout,
      responseTimeoutMs: up.responseTimeout,
    });
  }

  const routes: RouteRule[] = [];
  const routedPools = new Set<PoolConfig>();
  for (const m of ofKind<HttpRouteSpec>('HTTPRoute')) {
    m.spec.rules.forEach((rule, ri) => {
      const backends: { value: RouteBackend; weight: number }[] = [];
      rule.backendRefs.forEach((b, bi) => {
        if ('url' in b) {
          const url = b.url.replace(/\/$/, '');
          const u = new URL(url);
          backends.push({ value: { kind: 'url', url, address: `${u.hostname}:${portOf(u)}` }, weight: b.weight });
        }
        else {
          const pool = pools.get(b.name);
          if (!pool) problems.push(`${where(m)}: spec.rules[${ri}].backendRefs[${bi}].name: no InferencePool "${b.name}"`);
          else {
            routedPools.add(pool);
            backends.push({ value: { kind: 'pool', pool }, weight: b.weight });
          }
        }
      });
      const draw = backends.some((b) => b.weight > 0) ? new WeightedDraw(backends) : null;
      routes.push({ route: m.metadata.name, hostnames: m.spec.hostnames ?? [], matches: rule.matches ?? [], backends: draw });
    });
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return { settings, pools, models, objectives, routes, routedPools, manifests };
}
