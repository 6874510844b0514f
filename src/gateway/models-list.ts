// GET /v1/models and GET /v1/models/{model}: the models this gateway serves, from configuration, in OpenAI's shapes
// (the openai SDK's models.list() and models.retrieve()). With API keys, only the models the caller's key may use.
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

/** The answer to GET /v1/models or /v1/models/{model}; a model the caller cannot see is a 404, as one that does not exist. */
export function modelsAnswer(config: RuntimeConfig, ctx: RequestContext, created: number): DirectResponse {
  // `pool` only where one pool serves the name: of several, an HTTPRoute chooses per request.
  const models = visibleModels(config, ctx).map((served) => ({
    id: served[0].name,
    object: 'model',
    created,
    owned_by: 'tollgate',
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
