import { test } from 'node:test';
import assert from 'node:assert/strict';
import { policyOfFault } from './apim-metrics.js';

test('fault codes map to the policy kind that raised them', () => {
  const cases: [string, string | undefined][] = [
    ['policies.ratelimit.SpikeArrestViolation', 'SpikeArrest'],
    ['policies.ratelimit.QuotaViolation', 'Quota'],
    ['policies.llmtokenquota.LLMTokenQuotaViolation', 'LLMTokenQuota'],
    ['steps.oauth.v2.FailedToResolveAPIKey', 'VerifyAPIKey'],
    ['oauth.v2.InvalidApiKeyForGivenResource', 'VerifyAPIKey'],
    ['keymanagement.service.consumer_key_expired', 'VerifyAPIKey'],
    ['oauth.v2.invalid_client', 'OAuthV2'],
    ['oauth.v2.unsupported_grant_type', 'OAuthV2'],
    ['oauth.v2.InsufficientScope', 'OAuthV2'],
    ['oauth.v2.InvalidAccessToken', 'OAuthV2'],
    ['keymanagement.service.access_token_expired', 'OAuthV2'],
    ['keymanagement.service.InvalidAPICallAsNoApiProductMatchFound', 'OAuthV2'],
    ['steps.jwt.TokenExpired', 'VerifyJWT'],
    ['steps.jwt.SigningFailed', 'GenerateJWT'],
    ['steps.cors.OriginNotAllowed', 'CORS'],
    ['steps.assignmessage.UnresolvedVariable', 'AssignMessage'],
    ['steps.keyvaluemapoperations.SetVariableFailed', 'KeyValueMapOperations'],
    ['steps.tokeninjection.TokenFetchFailed', 'TokenInjection'],
    ['steps.sanitize.UserPromptBlocked', 'SanitizeUserPrompt'],
    ['steps.sanitize.ModelResponseBlocked', 'SanitizeModelResponse'],
    ['model_not_found', undefined],
    ['vendor.custom.Thing', 'vendor.custom'],
  ];
  for (const [code, policy] of cases) assert.equal(policyOfFault(code), policy, code);
});
