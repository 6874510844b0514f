// Policy kinds the engine can build: manifest kind → factory. Built-ins are registered in one explicit call.
import { llmTokenQuota } from './policies/llm-token-quota/llm-token-quota.js';
import { promptTokenLimit } from './policies/prompt-token-limit/prompt-token-limit.js';
import { quota } from './policies/quota/quota.js';
import { spikeArrest } from './policies/spike-arrest/spike-arrest.js';
import { verifyApiKey } from './policies/verify-api-key/verify-api-key.js';
import type { PolicyFactory } from './types.js';

export class PolicyRegistry {
  readonly #factories = new Map<string, PolicyFactory>();

  /** register('SpikeArrest', spikeArrest); a kind registered twice is a programming error. */
  register(kind: string, factory: PolicyFactory): this {
    if (this.#factories.has(kind)) throw new Error(`policy kind "${kind}" is already registered`);
    this.#factories.set(kind, factory);
    return this;
  }

  get(kind: string): PolicyFactory | undefined {
    return this.#factories.get(kind);
  }

  kinds(): string[] {
    return [...this.#factories.keys()];
  }
}

/** The policies tollgate ships, by manifest kind. */
export function registerBuiltins(registry: PolicyRegistry = new PolicyRegistry()): PolicyRegistry {
  return registry
    .register('VerifyAPIKey', verifyApiKey)
    .register('SpikeArrest', spikeArrest)
    .register('Quota', quota)
    .register('LLMTokenQuota', llmTokenQuota)
    .register('PromptTokenLimit', promptTokenLimit);
}
