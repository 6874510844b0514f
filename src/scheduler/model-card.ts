// Reading an engine's context length from its OpenAI model list: vLLM (and SGLang) put `max_model_len` on each model
// card; adapters (LoRA) share their base model's. The smallest over the list is what every request there can use.

/** The smallest positive integer max_model_len of the list's models; undefined when none says one (or not a list). */
export function contextWindowOf(modelsJson: string): number | undefined {
  let list: unknown;
  try {
    list = JSON.parse(modelsJson);
  } catch {
    return undefined;
  }
  const data = (list as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) return undefined;
  let smallest: number | undefined;
  for (const card of data) {
    const n = (card as { max_model_len?: unknown } | null)?.max_model_len;
    if (typeof n === 'number' && Number.isSafeInteger(n) && n > 0 && (smallest === undefined || n < smallest)) smallest = n;
  }
  return smallest;
}
