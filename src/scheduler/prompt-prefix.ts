// The part of a prompt a pool's picker reads: all a pick request need hold of it, while it waits in the flow-control
// queue and while it runs (its fallbacks hash it again).
import type { PoolConfig } from '../config/runtime-config.js';
import type { EndpointPickerConfigSpec } from '../config/inference-kinds.js';
import { DEFAULT_PICKER_CONFIG } from './default-picker-config.js';
import { PluginRegistry, registerBuiltins } from './plugin-registry.js';
import { PREFIX_CACHE_SCORER, prefixCharsRead } from './plugins/scorers/prefix-cache-scorer/prefix-cache-scorer.js';

/** Of the built-in plugins only the prefix-cache scorer reads the prompt; another registry's types may read all of it. */
const BUILTINS = new Set(registerBuiltins(new PluginRegistry()).types());

const charsBySpec = new WeakMap<EndpointPickerConfigSpec, number>();

/** The leading characters of a prompt the pool's profile reads (as Scheduler compiles it): 0 when none does. */
export function promptCharsRead(pool: PoolConfig): number {
  const spec = pool.picker ?? DEFAULT_PICKER_CONFIG;
  let chars = charsBySpec.get(spec);
  if (chars === undefined) {
    chars = 0;
    for (const p of spec.plugins) {
      const read = p.type === PREFIX_CACHE_SCORER ? prefixCharsRead(p.parameters) : BUILTINS.has(p.type) ? 0 : Infinity;
      if (read > chars) chars = read;
    }
    charsBySpec.set(spec, chars);
  }
  return chars;
}

/**
 * The first `chars` characters of `prompt`, as a string of their own: V8's slice() keeps the whole prompt alive
 * behind a short one (40 slices of 16 KiB held 640 MiB: their 16 MiB prompts), a UTF-16 round trip copies
 * exactly (lone surrogates too).
 */
export function promptPrefix(prompt: string, chars: number): string {
  if (prompt.length <= chars) return prompt;
  return Buffer.from(prompt.slice(0, chars), 'utf16le').toString('utf16le');
}
