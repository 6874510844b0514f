import { test } from 'node:test';
import assert from 'node:assert/strict';
import { policyOfFault } from './apim-metrics.js';

test('fault codes map to the policy that raised them', () => {
  const cases: [string, string | undefined][] = [
    ['policies.ratelimit.SpikeArrestViolation', 'SpikeArrest'],
    ['policies.ratelimit.QuotaViolation', 'Quota'],
    ['policies.llmtokenquota.LLMTokenQuotaViolation', 'LLMTokenQuota'],
    ['steps.oauth.v2.FailedToResolveAPIKey', 'VerifyAPIKey'],
    ['oauth.v2.InvalidApiKeyForGivenResource', 'VerifyAPIKey'],
    ['keymanagement.service.consumer_key_expired', 'VerifyAPIKey'],
    ['model_not_found', undefined],
    ['vendor.custom.Thing', 'vendor.custom'],
  ];
  for (const [code, policy] of cases) assert.equal(policyOfFault(code), policy, code);
});
