// GET /v1/models and GET /v1/models/{model}: the models this gateway serves, from configuration, in OpenAI's shapes
// (the openai SDK's models.list() and models.retrieve()) with vLLM's fields beside them. With API keys, only the
// models the caller's key may use.
import type { ModelConfig, RuntimeConfig } from '../config/runtime-config.js';
import type { RequestContext } from './context.js';
import { gatewayError } from './errors.js';
import type { DirectResponse } from './hooks.js';

const LIST_PATH = '/v1/models';
const ONE_PREFIX = '/v1/models/';

/** Whether a GET of this path asks for the model list or for one model (whose id may hold slashes). */
export function isModelsPath(path: string): boolean {
  return path === LIST_PATH || (path.startsWith(ONE_PREFIX) && path.length > ONE_PREFIX.length);
}

/** A GET (or HEAD) of the model list or of one model. */
export function isModelsRequest(method: string, path: string): boolean {
  return (method === 'GET' || method === 'HEAD') && isModelsPath(path);
}

/**
 * Every model name (each once, with the pools that serve it), or with an identified key those an approved product of
 * it grants (a set without models grants all).
 */
function visibleModels(config: RuntimeConfig, ctx: RequestContext): ModelConfig[][] {
  const all = [...config.models.values()];
  const products = ctx.apim?.key?.products;
  if (!products) return all;
  const granted = new Set<string>();
  for (const product of products) {
    if (product.status !== 'approved') continue;
    for (const set of product.operationSets) {
      if (set.models === null) return all;
      for (const model of set.models) granted.add(model);
    }
  }
  return all.filter((served) => granted.has(served[0].name));
}

/** The name a model's requests are sent upstream as: its own, its one target's, or null when each draws among several. */
function upstreamName(model: ModelConfig): string | null {
  if (model.target === null) return model.name;
  return model.target.values.length === 1 ? model.target.values[0] : null;
}

/** What the pools serving a name agree it is sent upstream as; null when they do not (or one draws among several). */
function root(served: ModelConfig[]): string | null {
  const first = upstreamName(served[0]);
  return served.every((m) => upstreamName(m) === first) ? first : null;
}

/** The smallest context length the engines of the pools serving a name report (a request may land on any); null when none does. */
function maxModelLen(served: ModelConfig[], fleet: RequestContext['fleet']): number | null {
  let smallest: number | null = null;
  for (const m of served) {
    const n = fleet?.contextWindow?.(m.pool.name);
    if (n !== undefined && (smallest === null || n < smallest)) smallest = n;
  }
  return smallest;
}

/**
 * The answer to GET /v1/models or /v1/models/{model}; a model the caller cannot see is a 404, as one that does not
 * exist. Cards carry vLLM's `root`, `parent` and `max_model_len` (clients written for vLLM size prompts by it).
 * `root` is what answers already show as their `model`; `parent` stays null: a listed name is called as it is, and
 * the base model of an adapter it targets may be no name served here, or one the key may not use.
 */
export function modelsAnswer(
  config: RuntimeConfig,
  ctx: RequestContext,
  created: number,
  fleet: RequestContext['fleet'],
): DirectResponse {
  // `pool` only where one pool serves the name: of several, an HTTPRoute chooses per request.
  const models = visibleModels(config, ctx).map((served) => ({
    id: served[0].name,
    object: 'model',
    created,
    owned_by: 'tollgate',
    root: root(served),
    parent: null,
    max_model_len: maxModelLen(served, fleet),
    pool: served.length === 1 ? served[0].pool.name : undefined,
  }));
  const headers = { 'content-type': 'application/json' };
  if (ctx.path === LIST_PATH) return { status: 200, headers, body: JSON.stringify({ object: 'list', data: models }) };
  let id: string;
  try {
    id = decodeURIComponent(ctx.path.slice(ONE_PREFIX.length));
  } catch {
    id = ctx.path.slice(ONE_PREFIX.length);
  }
  const model = models.find((m) => m.id === id);
  if (!model) throw gatewayError('TG_ERR_MODEL_NOT_FOUND', `The model "${id}" does not exist`);
  return { status: 200, headers, body: JSON.stringify(model) };
}
