// Every fault code a policy can raise is in the fault tables of src/policy/README.md and of the policy's own README.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ACCESS_CONTROL_FAULTS, ASSIGN_MESSAGE_FAULTS, CORS_FAULTS, KEY_VALUE_MAP_OPERATIONS_FAULTS, OAS_VALIDATION_FAULTS } from './index.js';
import { LLM_TOKEN_QUOTA_FAULTS, PROMPT_TOKEN_LIMIT_FAULTS, QUOTA_FAULTS, SPIKE_ARREST_FAULTS, VERIFY_API_KEY_FAULTS } from './index.js';

const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8');
const FAULTS: [folder: string, codes: Record<string, string>][] = [
  ['verify-api-key', VERIFY_API_KEY_FAULTS],
  ['quota', QUOTA_FAULTS],
  ['spike-arrest', SPIKE_ARREST_FAULTS],
  ['llm-token-quota', LLM_TOKEN_QUOTA_FAULTS],
  ['prompt-token-limit', PROMPT_TOKEN_LIMIT_FAULTS],
  ['assign-message', ASSIGN_MESSAGE_FAULTS],
  ['oas-validation', OAS_VALIDATION_FAULTS],
  ['cors', CORS_FAULTS],
  ['access-control', ACCESS_CONTROL_FAULTS],
  ['key-value-map-operations', KEY_VALUE_MAP_OPERATIONS_FAULTS],
];

test('every fault code is documented', () => {
  const engine = read('./README.md');
  for (const [folder, codes] of FAULTS) {
    const own = read(`./policies/${folder}/README.md`);
    for (const code of Object.values(codes)) {
      assert.ok(engine.includes(`| \`${code}\` |`), `${code} missing from src/policy/README.md`);
      assert.ok(own.includes(`| \`${code}\` |`), `${code} missing from policies/${folder}/README.md`);
    }
  }
});
