// Schemas of the API-management kinds (apim.googleapis.com/v1): the extension policy, products, operation sets,
// templates and one kind per policy. Field names are Apigee's element names in camelCase.
import { z } from 'zod';
import { durationMs } from '../lib/duration.js';

export const APIM_API_VERSION = 'apim.googleapis.com/v1';

const positiveInt = z.number().int().positive();

export const timeUnit = z.enum(['minute', 'hour', 'day', 'week', 'month']);
export type TimeUnit = z.output<typeof timeUnit>;

export const countOn = z.enum(['input', 'output', 'total']);
export type CountOn = z.output<typeof countOn>;

/** A request variable, e.g. {ref: client_id} or {ref: request.header.x-tenant}. */
const variableRef = z.object({ ref: z.string().min(1) }).strict();

/** "10ps" (per second) or "600pm" (per minute), as Apigee's <Rate>. */
export const rate = z.string().regex(/^[1-9]\d*p[sm]$/, 'rate must be a count per second or minute, e.g. "10ps" or "600pm"');

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be a date and time, e.g. 2025-01-01T00:00:00Z');

export const apimExtensionPolicySpec = z
  .object({
    apigeeEnv: z.string().optional(),
    location: z.string().optional(),
    /** When a counter store cannot answer in time: allow (and count it) rather than answer 500. */
    failOpen: z.boolean().default(false),
    timeout: durationMs.pipe(z.number().min(10, 'timeout must be at least 10ms').max(10_000, 'timeout must be at most 10s')).default(1000),
    /** Turns on the default chain: VerifyAPIKey, entitlement and the product quotas. */
    defaultSecurityEnabled: z.boolean().default(false),
    /** Names the gateway; tollgate is the gateway, so any name matches. */
    targetRef: z
      .object({ name: z.string().min(1), kind: z.string().default('Gateway'), group: z.string().optional(), namespace: z.string().optional() })
      .strict(),
    /** tollgate: the error body shape clients get. */
    faultFormat: z.enum(['openai', 'apigee']).default('openai'),
  })
  .strict();

const attribute = z.object({ name: z.string().min(1), value: z.string() }).strict();

export const apiProductSpec = z
  .object({
    name: z.string().min(1).optional(),
    displayName: z.string().min(1),
    description: z.string().optional(),
    approvalType: z.enum(['auto', 'manual']).default('auto'),
    analytics: z.string().optional(),
    attributes: z.array(attribute).default([]),
    /** Which APIMExtensionPolicy enforces the product. */
    enforcementRefs: z
      .array(
        z
          .object({
            name: z.string().min(1),
            kind: z.literal('APIMExtensionPolicy').default('APIMExtensionPolicy'),
            group: z.string().default('apim.googleapis.com'),
            namespace: z.string().optional(),
          })
          .strict(),
      )
      .default([]),
    scopes: z.array(z.string()).optional(),
  })
  .strict();

export const productQuota = z.object({ limit: positiveInt, interval: positiveInt.default(1), timeUnit }).strict();
export const llmTokenQuotaLimit = productQuota.extend({ countOn: countOn.default('total') }).strict();

export const apiOperationSetSpec = z
  .object({
    apiProductRefs: z
      .array(z.object({ name: z.string().min(1), kind: z.string().default('APIProduct'), group: z.string().default('apim.googleapis.com') }).strict())
      .min(1),
    /** Requests per app per interval, counted per app and operation set. */
    quota: productQuota.optional(),
    /** Without restOperations every path is granted; `/**` ends a path with any suffix, `*` matches one segment. */
    restOperations: z
      .array(
        z
          .object({
            name: z.string().min(1),
            path: z.string().startsWith('/'),
            /** Without methods every method is granted. */
            methods: z.array(z.string().min(1).transform((m) => m.toUpperCase())).optional(),
          })
          .strict(),
      )
      .optional(),
    /** tollgate: the models this set grants (all when absent) and its token quota. */
    llmOperations: z
      .object({ models: z.array(z.string().min(1)).min(1).optional(), llmTokenQuota: llmTokenQuotaLimit.optional() })
      .strict()
      .optional(),
  })
  .strict();

const policyRef = z
  .object({ kind: z.string().min(1), name: z.string().min(1), group: z.string().optional(), namespace: z.string().optional() })
  .strict();

export const apimTemplateSpec = z
  .object({
    apimTemplateRule: z.object({ name: z.string().min(1), kind: z.string().optional(), group: z.string().optional(), namespace: z.string().optional() }).strict().optional(),
    /** The policies run in the order listed. Conditions (CEL) are stored now and evaluated by a later release. */
    templates: z.array(z.object({ policies: z.array(policyRef).min(1), condition: z.string().optional() }).strict()).min(1),
  })
  .strict();

const policyKindList = z.array(z.object({ kind: z.string().min(1) }).strict()).optional();

export const apimTemplateRuleSpec = z
  .object({ requiredList: policyKindList, denyList: policyKindList, allowList: policyKindList })
  .strict();

export const verifyApiKeySpec = z
  .object({
    /** Where the key is read from; by default `x-api-key`, then `Authorization: Bearer`. */
    apiKey: variableRef.optional(),
  })
  .strict();

export const spikeArrestSpec = z
  .object({
    rate,
    identifier: variableRef.optional(),
    messageWeight: variableRef.optional(),
    /** Count the rate over the whole second/minute (bursts allowed) instead of smoothing it into equal slots. */
    useEffectiveCount: z.boolean().default(false),
  })
  .strict();

export const quotaSpec = z
  .object({
    /** Apigee's <Allow count="N"/>; `limit` is accepted for the same thing. */
    allow: z.union([positiveInt, z.object({ count: positiveInt }).strict()]).optional(),
    limit: positiveInt.optional(),
    interval: positiveInt.default(1),
    timeUnit: timeUnit.optional(),
    /** Unset: windows start at the top of the minute/hour/day (UTC), on Mondays, on the 1st of the month. */
    type: z.enum(['calendar', 'rollingwindow', 'flexi']).optional(),
    startTime: isoTime.optional(),
    identifier: variableRef.optional(),
    messageWeight: variableRef.optional(),
    /** Take allow/interval/timeUnit from the operation set the key's product matched. */
    useQuotaConfigInAPIProduct: z.boolean().default(false),
    /** Counters with the same sharedName are one counter (e.g. an enforceOnly and a countOnly policy). */
    sharedName: z.string().min(1).optional(),
    countOnly: z.boolean().default(false),
    enforceOnly: z.boolean().default(false),
  })
  .strict()
  .superRefine((s, ctx) => {
    const own = s.allow !== undefined || s.limit !== undefined;
    if (s.useQuotaConfigInAPIProduct) {
      if (own || s.timeUnit) ctx.addIssue({ code: 'custom', path: ['useQuotaConfigInAPIProduct'], message: 'takes the limits from the API product: leave allow, limit and timeUnit out' });
      if (s.type === 'calendar') ctx.addIssue({ code: 'custom', path: ['type'], message: 'product quotas are calendar-aligned already; a calendar startTime needs the policy\'s own allow and timeUnit' });
    } else {
      if (!own) ctx.addIssue({ code: 'custom', path: ['allow'], message: 'allow (or limit) is required unless useQuotaConfigInAPIProduct is set' });
      if (s.allow !== undefined && s.limit !== undefined) ctx.addIssue({ code: 'custom', path: ['limit'], message: 'give allow or limit, not both' });
      if (!s.timeUnit) ctx.addIssue({ code: 'custom', path: ['timeUnit'], message: 'timeUnit is required unless useQuotaConfigInAPIProduct is set' });
    }
    if (s.type === 'calendar' && !s.startTime) ctx.addIssue({ code: 'custom', path: ['startTime'], message: 'a calendar quota needs a startTime' });
    if (s.type !== 'calendar' && s.startTime) ctx.addIssue({ code: 'custom', path: ['startTime'], message: 'startTime applies to calendar quotas only' });
    if (s.countOnly && s.enforceOnly) ctx.addIssue({ code: 'custom', path: ['enforceOnly'], message: 'countOnly and enforceOnly exclude each other' });
  });

export const llmTokenQuotaSpec = z
  .object({
    limit: positiveInt.optional(),
    interval: positiveInt.default(1),
    timeUnit: timeUnit.optional(),
    countOn: countOn.default('total'),
    identifier: variableRef.optional(),
    /** Reserved, and set upstream as the request's max tokens, when the client gives none. */
    defaultMaxTokens: positiveInt.default(4096),
    /** Take limit/interval/timeUnit/countOn from the operation set's llmOperations.llmTokenQuota. */
    useQuotaConfigInAPIProduct: z.boolean().default(false),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.useQuotaConfigInAPIProduct) {
      if (s.limit !== undefined || s.timeUnit) ctx.addIssue({ code: 'custom', path: ['useQuotaConfigInAPIProduct'], message: 'takes the limits from the API product: leave limit and timeUnit out' });
      return;
    }
    if (s.limit === undefined) ctx.addIssue({ code: 'custom', path: ['limit'], message: 'limit is required unless useQuotaConfigInAPIProduct is set' });
    if (!s.timeUnit) ctx.addIssue({ code: 'custom', path: ['timeUnit'], message: 'timeUnit is required unless useQuotaConfigInAPIProduct is set' });
  });

export const promptTokenLimitSpec = z
  .object({
    /** Prompt tokens per second ("500ps") or per minute ("20000pm"). */
    rate,
    identifier: variableRef.optional(),
  })
  .strict();

export type ApimExtensionPolicySpec = z.output<typeof apimExtensionPolicySpec>;
export type ApiProductSpec = z.output<typeof apiProductSpec>;
export type ApiOperationSetSpec = z.output<typeof apiOperationSetSpec>;
export type ApimTemplateSpec = z.output<typeof apimTemplateSpec>;
export type ApimTemplateRuleSpec = z.output<typeof apimTemplateRuleSpec>;
export type VerifyApiKeySpec = z.output<typeof verifyApiKeySpec>;
export type SpikeArrestSpec = z.output<typeof spikeArrestSpec>;
export type QuotaSpec = z.output<typeof quotaSpec>;
export type LlmTokenQuotaSpec = z.output<typeof llmTokenQuotaSpec>;
export type PromptTokenLimitSpec = z.output<typeof promptTokenLimitSpec>;
export type ProductQuota = z.output<typeof productQuota>;
export type LlmTokenQuotaLimit = z.output<typeof llmTokenQuotaLimit>;
