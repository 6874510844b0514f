// Reading an engine's OpenAI model list: vLLM (and SGLang) put `max_model_len` on each model card, and mark a LoRA
// adapter's card with the `parent` it applies to; every name the base model is served under has a card without one.
import { z } from 'zod';

export interface ModelList {
  /** The smallest positive integer max_model_len of the cards (what every request there can use); undefined when none says one. */
  contextWindow: number | undefined;
  /** Cards without a parent: each name the base model answers to (vLLM's --served-model-name lists several). */
  baseModels: string[];
  /** Cards with a parent: the LoRA adapters it serves now. */
  adapters: string[];
}

// Each field on its own: a card the server fills oddly (SGLang's adapters give max_model_len null) still says the rest.
const ModelCard = z.object({
  id: z.string().min(1).optional().catch(undefined),
  parent: z.string().min(1).nullish().catch(null),
  max_model_len: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional().catch(undefined),
});
const ModelListBody = z.object({ data: z.array(z.unknown()) });

/** The model list in `modelsJson` (GET /v1/models); undefined when it is not one. */
export function readModelList(modelsJson: string): ModelList | undefined {
  let body: unknown;
  try {
    body = JSON.parse(modelsJson);
  } catch {
    return undefined;
  }
  const list = ModelListBody.safeParse(body);
  if (!list.success) return undefined;
  const out: ModelList = { contextWindow: undefined, baseModels: [], adapters: [] };
  for (const item of list.data.data) {
    const card = ModelCard.safeParse(item);
    if (!card.success) continue;
    const { id, parent, max_model_len: n } = card.data;
    if (n !== undefined && (out.contextWindow === undefined || n < out.contextWindow)) out.contextWindow = n;
    if (id !== undefined) (parent ? out.adapters : out.baseModels).push(id);
  }
  return out;
}
