// Compiling an EndpointPickerConfig into a Pipeline: instantiate plugins, resolve the profile, fail fast naming the culprit.
import { ZodError } from 'zod';
import type { EndpointPickerConfigSpec } from '../config/inference-kinds.js';
import { Pipeline, type PluginTimer, type WeightedScorer } from './pipeline.js';
import { DEFAULT_SETTINGS } from '../config/settings.js';
import { PluginRegistry, registerBuiltins, type PluginEntry } from './plugin-registry.js';
import type { Filter, Picker, Plugin, PluginDeps, Scorer } from './plugin-types.js';
import { HEALTHY_FILTER, healthyFilter } from './plugins/filters/healthy-filter/healthy-filter.js';
import { SUBSET_FILTER, subsetFilter } from './plugins/filters/subset-filter/subset-filter.js';
import { MAX_SCORE_PICKER, maxScorePicker } from './plugins/pickers/max-score-picker/max-score-picker.js';

export class PickerConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid EndpointPickerConfig: ${problems.join('; ')}`);
    this.problems = problems;
  }
}

export interface CompileOptions {
  registry: PluginRegistry;
  deps: PluginDeps;
  timerFor?: (plugin: Plugin) => PluginTimer;
}

type Instance = { kind: 'filter'; plugin: Filter } | { kind: 'scorer'; plugin: Scorer } | { kind: 'picker'; plugin: Picker };

const noTimer: PluginTimer = () => {};

/**
 * compilePickerConfig(spec, { registry, deps }) → Pipeline, or throws PickerConfigError listing every problem.
 * Without schedulingProfiles, one profile runs every plugin (scorers at weight 1). The healthy and
 * subset filters always run first unless the profile places them itself; the picker defaults to max-score-picker.
 */
export function compilePickerConfig(spec: EndpointPickerConfigSpec, opts: CompileOptions): Pipeline {
  const problems: string[] = [];
  const instances = new Map<string, Instance>();
  const failed = new Set<string>();
  spec.plugins.forEach((p, i) => {
    const name = p.name ?? p.type;
    const prev = instances.get(name);
    if (prev || failed.has(name)) {
      problems.push(`plugins[${i}]: duplicate plugin name "${name}" (type "${p.type}"${prev ? `, already used by type "${prev.plugin.type}"` : ''})`);
      return;
    }
    const entry = opts.registry.get(p.type);
    if (!entry) {
      failed.add(name);
      problems.push(`plugins[${i}]: plugin "${name}" has unknown type "${p.type}" (known: ${opts.registry.types().join(', ')})`);
      return;
    }
    try {
      instances.set(name, instantiate(entry, name, p.parameters ?? {}, opts.deps));
    } catch (err) {
      failed.add(name);
      problems.push(...paramProblems(`plugins[${i}] (plugin "${name}", type "${p.type}")`, err));
    }
  });

  const profiles = spec.schedulingProfiles;
  if (profiles && profiles.length > 1) {
    problems.push(`schedulingProfiles: one profile is supported, found ${profiles.length} (${profiles.map((p) => `"${p.name}"`).join(', ')})`);
  }
  const refs = profiles?.[0]?.plugins ?? [...instances.keys()].map((name) => ({ pluginRef: name, weight: undefined }));
  const where = profiles ? `schedulingProfiles[0] ("${profiles[0].name}")` : 'plugins';

  const filters: Filter[] = [];
  const scorers: WeightedScorer[] = [];
  let picker: Picker | undefined;
  const used = new Set<string>();
  refs.forEach((ref, j) => {
    const instance = instances.get(ref.pluginRef);
    if (!instance) {
      if (!failed.has(ref.pluginRef)) problems.push(`${where}.plugins[${j}].pluginRef: no plugin named "${ref.pluginRef}"`);
      return;
    }
    if (used.has(ref.pluginRef)) {
      problems.push(`${where}.plugins[${j}].pluginRef: plugin "${ref.pluginRef}" is listed twice`);
      return;
    }
    used.add(ref.pluginRef);
    if (instance.kind === 'filter') filters.push(instance.plugin);
    else if (instance.kind === 'scorer') scorers.push({ scorer: instance.plugin, weight: ref.weight ?? 1 });
    else if (picker) problems.push(`${where}.plugins[${j}].pluginRef: a profile has one picker, "${picker.name}" and "${instance.plugin.name}" are both pickers`);
    else picker = instance.plugin;
  });
  if (problems.length > 0) throw new PickerConfigError(problems);

  // Fresh, healthy endpoints only, and only those the subset hint allows, whatever the profile says.
  if (!filters.some((f) => f.type === SUBSET_FILTER)) filters.unshift(subsetFilter(SUBSET_FILTER, {}, opts.deps));
  if (!filters.some((f) => f.type === HEALTHY_FILTER)) filters.unshift(healthyFilter(HEALTHY_FILTER, {}, opts.deps));
  picker ??= maxScorePicker(MAX_SCORE_PICKER, {}, opts.deps);
  return new Pipeline({ filters, scorers, picker }, opts.timerFor ?? (() => noTimer));
}

/**
 * What compiling `spec` would report, [] when it compiles: for configuration loading to refuse a bad
 * EndpointPickerConfig with the file's other errors, before anything is applied.
 */
export function pickerConfigProblems(spec: EndpointPickerConfigSpec, registry = registerBuiltins(new PluginRegistry())): string[] {
  try {
    compilePickerConfig(spec, { registry, deps: { settings: DEFAULT_SETTINGS.scheduler, random: Math.random, observePrefixHitRatio: () => {} } });
    return [];
  } catch (err) {
    if (err instanceof PickerConfigError) return err.problems;
    throw err;
  }
}

function instantiate(entry: PluginEntry, name: string, params: unknown, deps: PluginDeps): Instance {
  switch (entry.kind) {
    case 'filter':
      return { kind: 'filter', plugin: entry.factory(name, params, deps) };
    case 'scorer':
      return { kind: 'scorer', plugin: entry.factory(name, params, deps) };
    case 'picker':
      return { kind: 'picker', plugin: entry.factory(name, params, deps) };
  }
}

function paramProblems(where: string, err: unknown): string[] {
  if (err instanceof ZodError) {
    return err.issues.map((issue) => `${where}: ${['parameters', ...issue.path.map(String)].join('.')}: ${issue.message}`);
  }
  return [`${where}: ${(err as Error).message}`];
}
