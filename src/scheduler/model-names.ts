// The model names a pool's endpoints list now, as base models and as LoRA adapters: what tells an adapter request
// from a base-model one.
import type { LoraSnapshot } from './engine-metrics.js';
import type { EndpointState } from './endpoint-state.js';
import type { ModelList } from './model-card.js';

/** What one endpoint's names were counted from. */
interface Listed {
  lora: LoraSnapshot | null;
  models: ModelList | undefined;
  modelName: string | null;
}

/**
 * Each name counted once per list that has it (an endpoint's running and waiting adapters, its model list's cards,
 * its metrics' model_name), so that it goes when the last one drops it: kept for good, a server listing new names at
 * every scrape grew the gateway by some 30 MB a second. Counted anew only when a list changed, and only that list.
 */
export class ModelNames {
  readonly #adapters = new Map<string, number>();
  readonly #baseModels = new Map<string, number>();
  readonly #listed = new Map<EndpointState, Listed>();
  /** An endpoint showed adapter slots: the pool's servers take adapters (a cut page, which hides them, changes nothing). */
  #loraCapable = false;

  /** After a scrape or a model-list read of `ep`. */
  note(ep: EndpointState): void {
    const { lora, modelName } = ep.metrics;
    const models = ep.models;
    if (lora && lora.maxLoras > 0) this.#loraCapable = true;
    let listed = this.#listed.get(ep);
    if (!listed) this.#listed.set(ep, (listed = { lora: null, models: undefined, modelName: null }));
    if (!sameLora(listed.lora, lora)) {
      this.#countLora(listed.lora, -1);
      this.#countLora(lora, 1);
      listed.lora = lora;
    }
    if (listed.models !== models) {
      this.#countModels(listed.models, -1);
      this.#countModels(models, 1);
      listed.models = models;
    }
    if (listed.modelName !== modelName) {
      if (listed.modelName) count(this.#baseModels, [listed.modelName], -1);
      if (modelName) count(this.#baseModels, [modelName], 1);
      listed.modelName = modelName;
    }
  }

  /** `ep` left the pool. */
  forget(ep: EndpointState): void {
    const listed = this.#listed.get(ep);
    if (!listed) return;
    this.#listed.delete(ep);
    this.#countLora(listed.lora, -1);
    this.#countModels(listed.models, -1);
    if (listed.modelName) count(this.#baseModels, [listed.modelName], -1);
  }

  /**
   * An adapter when an endpoint says it is one (in its metrics' adapter lists, or with a parent in its model list), or
   * when the servers take adapters and it is none of their base model's names: the metrics' model_name label has only
   * the first (vLLM's --served-model-name base alias), the model list's cards without a parent have each.
   */
  isAdapter(model: string): boolean {
    if (this.#adapters.has(model)) return true;
    return this.#loraCapable && this.#baseModels.size > 0 && !this.#baseModels.has(model);
  }

  #countLora(lora: LoraSnapshot | null, by: 1 | -1): void {
    if (!lora) return;
    count(this.#adapters, lora.running, by);
    count(this.#adapters, lora.waiting, by);
  }

  #countModels(models: ModelList | undefined, by: 1 | -1): void {
    if (!models) return;
    count(this.#adapters, models.adapters, by);
    count(this.#baseModels, models.baseModels, by);
  }
}

function count(counts: Map<string, number>, names: Iterable<string>, by: 1 | -1): void {
  for (const name of names) {
    const n = (counts.get(name) ?? 0) + by;
    if (n <= 0) counts.delete(name);
    // Newly listed. A name read from a page is a slice of it, which V8 keeps whole: a copy, or each name kept here kept
    // the 4 MiB page it was first read from.
    else if (by > 0 && n === 1) counts.set(structuredClone(name), n);
    else counts.set(name, n);
  }
}

/** The same adapter lists (each scrape reads new sets). */
function sameLora(a: LoraSnapshot | null, b: LoraSnapshot | null): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return sameSet(a.running, b.running) && sameSet(a.waiting, b.waiting);
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const name of a) if (!b.has(name)) return false;
  return true;
}
