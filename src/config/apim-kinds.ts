// Schemas of the API-management kinds (apim.googleapis.com/v1): the extension policy, products, operation sets,
// templates and one kind per policy. Field names are Apigee's element names in camelCase.
import { z } from 'zod';
import { durationMs, longDurationMs, MAX_TIMER_DURATION, MAX_TIMER_MS } from '../lib/duration.js';
import { FRAMING_HEADERS } from '../lib/framing-headers.js';
import { compileTextPattern } from '../lib/linear-regex.js';

export const APIM_API_VERSION = 'apim.googleapis.com/v1';

const positiveInt = z.number().int().positive();
/** Windows up to 100,000 units: beyond, a window's end leaves the range of dates (every request then failed). */
const quotaInterval = positiveInt.max(100_000, 'interval must be at most 100000 time units');

export const timeUnit = z.enum(['minute', 'hour', 'day', 'week', 'month']);
export type TimeUnit = z.output<typeof timeUnit>;

export const countOn = z.enum(['input', 'output', 'total']);
export type CountOn = z.output<typeof countOn>;

/** A request variable, e.g. {ref: client_id} or {ref: request.header.x-tenant}. */
const variableRef = z.object({ ref: z.string().min(1) }).strict();

/**
 * The most per second a rate may allow: one per microsecond, the step the counter stores keep a rate's timing in.
 * Faster rates were accepted, then never enforced (from 2,000,000ps every request passed), and past 2^53 every request
 * failed with a RangeError.
 */
const MAX_RATE_PER_SECOND = 1_000_000;

/** "10ps" (per second) or "600pm" (per minute), as Apigee's <Rate>. */
export const rate = z
  .string()
  // abort: the bound below reads a count that is not there ("fast" was also told it was faster than allowed).
  .regex(/^[1-9]\d*p[sm]$/, { message: 'rate must be a count per second or minute, e.g. "10ps" or "600pm"', abort: true })
  .refine((r) => Number(r.slice(0, -2)) <= (r.endsWith('ps') ? 1 : 60) * MAX_RATE_PER_SECOND, `rate must be at most ${MAX_RATE_PER_SECOND}ps (${60 * MAX_RATE_PER_SECOND}pm)`);

/** What a header value may carry: no control characters (CR, LF, NUL, tab…) and nothing past U+00FF. */
export const HEADER_TEXT = /^[\x20-\x7e\xa0-\xff]*$/;
export const HEADER_TEXT_PROBLEM = 'control characters (CR, LF, NUL…) nor characters past U+00FF: a header cannot carry them';

/** A secret by environment variable name: the value never sits in a manifest, the store or a log. */
export const envRef = z.object({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name') }).strict();
/** Key material given inline (a public key) or by environment variable (anything secret). */
export const keySource = z.union([z.object({ value: z.string().min(1) }).strict(), envRef]);
/**
 * Headers tollgate sends to a service of its own (an embeddings endpoint, a classifier): each a value, or `{env}` for a
 * credential (`authorization: {env: EMBEDDINGS_TOKEN}`), which then never sits in a manifest or the store.
 */
const outboundHeaders = z.record(z.string(), z.union([z.string(), envRef])).default({});
export type OutboundHeaders = z.output<typeof outboundHeaders>;

/** yyyy-MM-dd, then a time and a zone if wanted (ISO 8601, or Apigee's `2024-07-1 05:00:00`). */
const DATE_TIME = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i;
const pad2 = (n: string | undefined) => (n ?? '0').padStart(2, '0');

/**
 * A date and time as an ISO string with its zone. Without a zone it is UTC, as Apigee reads a Quota's StartTime:
 * Date.parse would read it in the process's time zone, so replicas with another TZ counted other windows (and twice
 * the quota between them).
 */
export const isoTime = z.string().transform((s, ctx) => {
  const m = DATE_TIME.exec(s.trim());
  const zone = m?.[8] === undefined ? 'Z' : m[8].toUpperCase().replace(/^([+-]\d{2})(\d{2})$/, '$1:$2');
  const iso = m && `${m[1]}-${pad2(m[2])}-${pad2(m[3])}T${pad2(m[4])}:${pad2(m[5])}:${pad2(m[6])}${m[7] ?? ''}${zone}`;
  // Date.parse takes a 31st of February as the 3rd of March: the date must come back as it was written.
  if (!iso || Number.isNaN(Date.parse(iso)) || new Date(Date.parse(`${iso.slice(0, 10)}T00:00:00Z`)).toISOString().slice(0, 10) !== iso.slice(0, 10)) {
    ctx.addIssue({ code: 'custom', message: 'must be a date and time, e.g. 2025-01-01T00:00:00Z (without a zone: UTC)' });
    return z.NEVER;
  }
  return iso;
});

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
    /** tollgate: ApimTemplates run for requests entitled through this product, after entitlement, in this order. */
    templateRefs: z.array(z.object({ name: z.string().min(1), kind: z.literal('ApimTemplate').default('ApimTemplate') }).strict()).optional(),
  })
  .strict();

export const productQuota = z.object({ limit: positiveInt, interval: quotaInterval.default(1), timeUnit }).strict();
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
    /**
     * tollgate: the models this set grants (all when absent), the InferenceObjectives a caller may name in
     * x-gateway-inference-objective (any when absent; without the header the model's own criticality applies), and
     * its token quota.
     */
    llmOperations: z
      .object({ models: z.array(z.string().min(1)).min(1).optional(), objectives: z.array(z.string().min(1)).min(1).optional(), llmTokenQuota: llmTokenQuotaLimit.optional() })
      .strict()
      .optional(),
  })
  .strict();

/** Entries of an ApimTemplate, and policies of one entry. */
export const MAX_TEMPLATE_POLICIES = 1000;

const policyRef = z
  .object({ kind: z.string().min(1), name: z.string().min(1), group: z.string().optional(), namespace: z.string().optional() })
  .strict();

export const apimTemplateSpec = z
  .object({
    apimTemplateRule: z.object({ name: z.string().min(1), kind: z.string().optional(), group: z.string().optional(), namespace: z.string().optional() }).strict().optional(),
    /**
     * The policies run in the order listed, each entry's only when its CEL `condition` (if any) holds. Bounded far past
     * any real chain: a 10 MB template of 350,000 references took seconds of the event loop to check.
     */
    templates: z
      .array(z.object({ policies: z.array(policyRef).min(1).max(MAX_TEMPLATE_POLICIES), condition: z.string().optional() }).strict())
      .min(1)
      .max(MAX_TEMPLATE_POLICIES),
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
    interval: quotaInterval.default(1),
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
    interval: quotaInterval.default(1),
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

// AI policies: caches and prompt/response sanitizing.

const cacheScope = z.enum(['app', 'product', 'global']);
const mib = 1024 * 1024;
/** "2s" in a manifest; milliseconds once parsed, so parsing the parsed spec again (policy factories do) still works. */
const durationField = z.union([z.number().nonnegative(), durationMs]);

export const responseCacheSpec = z
  .object({
    /** Apigee's <CacheResource>: policies naming the same resource share entries (default: the policy's name). */
    cacheResource: z.string().min(1).optional(),
    expirySettings: z.object({ timeoutInSeconds: positiveInt }).strict().prefault({ timeoutInSeconds: 300 }),
    /** Whose answers are shared: one app's (default), one API product's, or everybody's (only when said so). */
    scope: cacheScope.default('app'),
    /** Also cache requests that sample (temperature other than 0 and no seed). */
    cacheNonDeterministic: z.boolean().default(false),
    /** `redis` shares entries between replicas through the gateway's --redis. */
    store: z.enum(['memory', 'redis']).default('memory'),
    /** Budget of the in-memory store, bytes. */
    maxBytes: positiveInt.default(64 * mib),
    /** Larger answers are not cached, bytes. */
    maxEntryBytes: positiveInt.default(mib),
  })
  .strict();

export const semanticCacheLookupSpec = z
  .object({
    cacheResource: z.string().min(1).optional(),
    /** Which text is embedded: the last user message (default) or every user message. */
    userPromptSource: z.enum(['lastUserMessage', 'userMessages']).default('lastUserMessage'),
    /** An OpenAI-compatible /v1/embeddings endpoint. */
    embeddings: z
      .object({
        url: z.url({ protocol: /^https?$/ }),
        model: z.string().min(1),
        headers: outboundHeaders,
        timeout: durationField.pipe(z.number().min(10).max(30_000)).default(2000),
      })
      .strict(),
    similaritySearch: z.object({ threshold: z.number().gt(0).max(1).default(0.95) }).strict().prefault({}),
    scope: cacheScope.default('app'),
    /** Only requests with the same system prompt, earlier turns, tools and response format can share an answer. */
    matchContext: z.boolean().default(true),
    store: z.enum(['memory', 'redis', 'postgres']).default('memory'),
    maxEntriesPerScope: positiveInt.default(10_000),
    maxEntryBytes: positiveInt.default(mib),
  })
  .strict();

export const semanticCachePopulateSpec = z
  .object({
    ttlInSeconds: positiveInt.default(3600),
    /** The SemanticCacheLookup whose prompt embedding and scope are stored (default: the one that ran). */
    lookupPolicy: z.string().min(1).optional(),
  })
  .strict();

export const PII_TYPES = ['email', 'phone', 'creditCard', 'usSsn', 'ukNino', 'iban'] as const;
export const SECRET_TYPES = ['awsAccessKey', 'githubToken', 'openaiKey', 'slackToken', 'googleApiKey', 'stripeKey', 'privateKey', 'tollgateKey', 'jwt', 'genericSecret'] as const;

const sanitizeAction = z.enum(['block', 'redact', 'off']);
/** A regular expression run on client text: valid, and on a linear engine when V8 may take exponential time on it (linear-regex.ts). */
const regexSource = z
  .string()
  .min(1)
  .superRefine((s, ctx) => {
    try {
      new RegExp(s, 'u');
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a valid regular expression' });
      return;
    }
    try {
      compileTextPattern(s, 'giu');
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

/** The Model Armor-like filters; prompt injection is off by default on the response side. */
const sanitizeFilters = (piAction: 'block' | 'off') =>
  z
    .object({
      /** Prompt injection and jailbreak phrases, scored; at or above the threshold the filter acts. */
      piAndJailbreak: z.object({ action: sanitizeAction.default(piAction), threshold: z.number().gt(0).max(1).default(0.5) }).strict().prefault({}),
      sensitiveData: z.object({ action: sanitizeAction.default('redact'), types: z.array(z.enum(PII_TYPES)).min(1).optional() }).strict().prefault({}),
      secrets: z.object({ action: sanitizeAction.default('redact'), types: z.array(z.enum(SECRET_TYPES)).min(1).optional() }).strict().prefault({}),
      maliciousUri: z
        .object({
          action: sanitizeAction.default('block'),
          /** These domains and their subdomains are refused. */
          blockedDomains: z.array(z.string().min(1)).default([]),
          /** Never flagged (your own domains). */
          allowedDomains: z.array(z.string().min(1)).default([]),
          /** URLs whose host is a public IP address. */
          blockIpLiterals: z.boolean().default(true),
        })
        .strict()
        .prefault({}),
      denyList: z.object({ action: sanitizeAction.default('block'), words: z.array(z.string().regex(/\S/, 'a listed word or phrase needs a character that is not white space')).default([]), patterns: z.array(regexSource).default([]) }).strict().optional(),
    })
    .strict()
    .prefault({});

const classifierSpec = z
  .object({
    /** POST {"text"} → {"score": 0..1}. */
    url: z.url({ protocol: /^https?$/ }),
    headers: outboundHeaders,
    timeout: durationField.pipe(z.number().min(10).max(10_000)).default(500),
    threshold: z.number().gt(0).max(1).default(0.8),
    /** When the classifier cannot answer: let the text through (default) or refuse it. */
    failOpen: z.boolean().default(true),
  })
  .strict();

export const sanitizeUserPromptSpec = z
  .object({
    /** The roles whose messages are checked and redacted. */
    roles: z.array(z.string().min(1)).min(1).default(['user']),
    filters: sanitizeFilters('block'),
    classifier: classifierSpec.optional(),
  })
  .strict();

export const sanitizeModelResponseSpec = z
  .object({
    filters: sanitizeFilters('off'),
    classifier: classifierSpec.optional(),
    /** Characters of each streamed choice held back so an item split across chunks is still caught whole. */
    streamHoldback: z.number().int().min(0).max(4096).default(200),
  })
  .strict();

export type ResponseCacheSpec = z.output<typeof responseCacheSpec>;
export type SemanticCacheLookupSpec = z.output<typeof semanticCacheLookupSpec>;
export type SemanticCachePopulateSpec = z.output<typeof semanticCachePopulateSpec>;
export type SanitizeFilters = z.output<ReturnType<typeof sanitizeFilters>>;
export type ClassifierSpec = z.output<typeof classifierSpec>;
export type SanitizeUserPromptSpec = z.output<typeof sanitizeUserPromptSpec>;
export type SanitizeModelResponseSpec = z.output<typeof sanitizeModelResponseSpec>;
export type PiiType = (typeof PII_TYPES)[number];
export type SecretType = (typeof SECRET_TYPES)[number];

// Security and mediation policies: OAuthV2, JWTs, service callouts, upstream credentials, JavaScript.

const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be an HTTP header name').transform((n) => n.toLowerCase());
/** A header a policy sets or removes on a message: not one the proxy frames the message with. */
const messageHeaderName = headerName.refine((n) => !FRAMING_HEADERS.has(n), { message: 'frames the message: the proxy sets it, a policy may not' });

/** The milliseconds of a duration text of any length (token lifetimes may be longer than a timer's 24d), or NaN. */
const msOf = (text: string): number => longDurationMs.safeParse(text).data ?? NaN;

/** A duration kept as text ("500ms", "1h"): factories re-parse stored specs, so the schema must not transform it. */
const durationText = z.string().refine((s) => !Number.isNaN(msOf(s)), 'must be a duration, e.g. 500ms, 30s, 5m, 1h');

/**
 * A duration a timer waits, kept as text: 1ms to 24d. Past 24d Node fires a timer at once (every call failed), and 0
 * could only expire at once. (Not a duration, NaN, passes the refine: durationText has said what is wrong.)
 */
const timerText = durationText.refine((s) => !(msOf(s) < 1 || msOf(s) > MAX_TIMER_MS), `must be 1ms to ${MAX_TIMER_DURATION}: a timer waits it`);

const stringOrList = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

export const oauthV2Spec = z
  .object({
    /** GenerateAccessToken answers the token endpoint (intercept); VerifyAccessToken checks Bearer tokens (authenticate). */
    operation: z.enum(['GenerateAccessToken', 'VerifyAccessToken']),
    /** GenerateAccessToken: where the token endpoint listens on the data plane. */
    tokenPath: z.string().startsWith('/').default('/oauth/token'),
    supportedGrantTypes: z.array(z.enum(['client_credentials'])).min(1).default(['client_credentials']),
    /** GenerateAccessToken: the tokens' lifetime. */
    expiresIn: durationText.default('1h'),
    /** VerifyAccessToken: space-separated scopes; the token must hold at least one. */
    scope: z.string().min(1).optional(),
  })
  .strict();

export const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
export const jwtAlgorithm = z.enum(JWT_ALGORITHMS);

export const verifyJwtSpec = z
  .object({
    /** Where the token is read from; by default `Authorization: Bearer` (a three-part token). */
    source: variableRef.optional(),
    /** The algorithms accepted; HMAC and public-key algorithms cannot be mixed (algorithm confusion). */
    algorithms: z.array(jwtAlgorithm).min(1),
    /** HS*: the shared secret. */
    secretKey: keySource.optional(),
    /** RS*, PS*, ES*: a PEM public key, or a JWKS fetched (and cached) from `jwks.uri`. */
    publicKey: keySource.optional(),
    jwks: z
      .object({
        uri: z.url({ protocol: /^https?$/ }),
        /** Keys are re-fetched (in the background) after this long. */
        cacheMaxAge: durationText.default('10m'),
        /** At most one re-fetch this often when a token names an unknown key, and none this soon after a failed one. */
        cooldown: durationText.default('30s'),
        timeout: timerText.default('5s'),
      })
      .strict()
      .optional(),
    issuer: stringOrList.optional(),
    audience: stringOrList.optional(),
    subject: z.string().min(1).optional(),
    /** Clock skew allowed on exp and nbf. */
    timeAllowance: durationText.default('0s'),
    /** Refuse tokens without `exp` (accepted by default, as Apigee does): a token that never expires cannot be retired. */
    requireExpiry: z.boolean().default(false),
    /** Claims that must have exactly these values. */
    additionalClaims: z.record(z.string().min(1), z.string()).default({}),
  })
  .strict();

export const generateJwtSpec = z
  .object({
    algorithm: jwtAlgorithm,
    secretKey: keySource.optional(),
    /** RS*, PS*, ES*: a PEM private key (PKCS#8, PKCS#1 or SEC1). */
    privateKey: keySource.optional(),
    /** The `kid` header. */
    keyId: z.string().min(1).optional(),
    issuer: z.string().min(1).optional(),
    audience: stringOrList.optional(),
    /** A template: `{client_id}` is the variable's value. */
    subject: z.string().min(1).optional(),
    expiresIn: durationText.default('5m'),
    /** A random `jti`. */
    id: z.boolean().default(false),
    /** Claim name → template (`{developer.email}`); a claim whose variable is unset is left out. */
    additionalClaims: z.record(z.string().min(1), z.string()).default({}),
    /** The request header the token goes upstream in. */
    outputHeader: messageHeaderName.default('x-jwt-assertion'),
  })
  .strict();

export const serviceCalloutSpec = z
  .object({
    request: z
      .object({
        method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).optional(),
        /** A template: `{name}` is a variable's value, URL-encoded. */
        url: z.string().min(1),
        /** Values are templates, or `{env: NAME}` for a credential kept out of the manifest (sent as it is). */
        headers: z.record(z.string().min(1), z.union([z.string(), envRef])).default({}),
        /** JSON sent as the body; every string in it is a template. */
        body: z.unknown().optional(),
      })
      .strict(),
    /** Prefix of the variables the answer is stored in (`.status`, `.content`, `.body.<field>`). */
    response: z.string().min(1).optional(),
    timeout: timerText.default('3s'),
    maxResponseBytes: positiveInt.default(1024 * 1024),
    /** Private networks (10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10) are refused unless allowed here. */
    allowPrivateNetworks: z.boolean().default(false),
    /** Hosts (names or addresses) exempt from the address checks, e.g. a sidecar on 127.0.0.1. */
    allowedHosts: z.array(z.string().min(1)).default([]),
  })
  .strict();

export const tokenInjectionSpec = z
  .object({
    /** The upstream request header; the client's own Authorization never goes upstream. */
    header: messageHeaderName.default('authorization'),
    /**
     * Before the token; default `Bearer ` for Authorization, nothing otherwise. Only what a header value carries: a CR
     * or LF would end the header, and undici refused every request as if the client had sent it.
     */
    prefix: z
      .string()
      .regex(HEADER_TEXT, `must not hold ${HEADER_TEXT_PROBLEM}`)
      .optional(),
    /** A static credential. */
    secret: envRef.optional(),
    /** An OAuth client-credentials token, fetched and refreshed before it expires. */
    clientCredentials: z
      .object({
        tokenUrl: z.url({ protocol: /^https?$/ }),
        clientId: keySource,
        clientSecret: envRef,
        scope: z.string().min(1).optional(),
        audience: z.string().min(1).optional(),
        /** How the client authenticates to the token endpoint (RFC 6749 §2.3.1). */
        authMethod: z.enum(['basic', 'body']).default('basic'),
        refreshBefore: durationText.default('60s'),
        timeout: timerText.default('5s'),
        /** After a failed fetch, requests without a valid token fail at once for this long. */
        retryAfterFailure: durationText.default('1s'),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((s) => (s.secret === undefined) !== (s.clientCredentials === undefined), 'give exactly one of secret and clientCredentials');

export const javaScriptSpec = z
  .object({
    /** The script (Apigee's <Source>): `context`, `request` and, in the response flow, `response` are in scope. */
    source: z.string().min(1),
    /** request: before the model server (admit); response: on its whole (non-streamed) answer. */
    flow: z.enum(['request', 'response']).default('request'),
    /** Wall-clock time per run (as Apigee's timeLimit); at most 10 s, as a run holds one of the few workers every script shares. */
    // Not a duration (NaN) passes here: zod runs this refine too, and durationText has said what is wrong.
    timeLimit: timerText.refine((t) => !(msOf(t) > 10_000), 'must be at most 10s: a run holds a worker every script shares').default('200ms'),
    memoryLimitMb: z.number().int().min(1).max(256).default(16),
  })
  .strict();

export type OAuthV2Spec = z.output<typeof oauthV2Spec>;
export type KeySource = z.output<typeof keySource>;
export type JwtAlgorithm = z.output<typeof jwtAlgorithm>;
export type VerifyJwtSpec = z.output<typeof verifyJwtSpec>;
export type GenerateJwtSpec = z.output<typeof generateJwtSpec>;
export type ServiceCalloutSpec = z.output<typeof serviceCalloutSpec>;
export type TokenInjectionSpec = z.output<typeof tokenInjectionSpec>;
export type JavaScriptSpec = z.output<typeof javaScriptSpec>;

// Message shaping, validation, browser access, IP access and key-value maps (the core catalogue).

/** A dot path into a JSON body, e.g. `metadata.tenant` or `messages.0.content`. */
const jsonPath = z
  .string()
  .regex(/^[^.]+(\.[^.]+)*$/, 'must be a dot path such as metadata.tenant')
  .refine((p) => !p.split('.').some((s) => s === '__proto__' || s === 'constructor' || s === 'prototype'), 'must not name __proto__, constructor or prototype');
const namedValue = <N extends z.ZodType>(name: N) => z.object({ name, value: z.string() }).strict();

export const assignMessageSpec = z
  .object({
    /** What the policy changes: the request before it goes upstream, or the answer before it reaches the client. */
    assignTo: z.enum(['request', 'response']).default('request'),
    /** Removed first, then set (Apigee's order). Values are message templates: `Bearer {kvm.token}`. */
    remove: z
      .object({
        headers: z.array(z.object({ name: messageHeaderName }).strict()).default([]),
        queryParams: z.array(z.object({ name: z.string().min(1) }).strict()).default([]),
        jsonFields: z.array(z.object({ path: jsonPath }).strict()).default([]),
      })
      .strict()
      .default({ headers: [], queryParams: [], jsonFields: [] }),
    set: z
      .object({
        headers: z.array(namedValue(messageHeaderName)).default([]),
        queryParams: z.array(namedValue(z.string().min(1))).default([]),
        /** A string value is a template; numbers, booleans, objects and null are set as given. */
        jsonFields: z.array(z.object({ path: jsonPath, value: z.unknown() }).strict()).default([]),
      })
      .strict()
      .default({ headers: [], queryParams: [], jsonFields: [] }),
    /** false (Apigee's default): a variable without a value faults the request; true: it renders empty. */
    ignoreUnresolvedVariables: z.boolean().default(false),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.assignTo === 'response' && (s.set.queryParams.length > 0 || s.remove.queryParams.length > 0)) {
      ctx.addIssue({ code: 'custom', path: ['set', 'queryParams'], message: 'query parameters belong to requests: use assignTo: request' });
    }
  });

export const oasValidationSpec = z
  .object({
    /** The OpenAPI 3 document: an object, or YAML/JSON text. */
    openApi: z.union([z.record(z.string(), z.unknown()), z.string().min(1)]).optional(),
    /** Or a file holding it, read as manifest files are; relative to the gateway's working directory, from the admin API too. */
    source: z.string().min(1).optional(),
    /** Also validate non-streamed JSON answers against the operation's response schema (502 when they break it). */
    validateResponses: z.boolean().default(false),
  })
  .strict()
  .refine((s) => (s.openApi === undefined) !== (s.source === undefined), { message: 'give the document in openApi or a file in source, not both', path: ['openApi'] });

export const corsSpec = z
  .object({
    /** Exact origins, `*`, or patterns with `*` for one or more labels: `https://*.example.com`. */
    allowOrigins: z.array(z.string().min(1)).min(1),
    allowMethods: z.array(z.string().min(1).transform((m) => m.toUpperCase())).default(['GET', 'PUT', 'POST', 'DELETE']),
    allowHeaders: z.array(headerName).default(['origin', 'x-requested-with', 'accept', 'content-type', 'authorization', 'x-api-key']),
    exposeHeaders: z.array(headerName).default([]),
    /** Seconds a browser may cache a preflight answer; -1 sends no Access-Control-Max-Age. */
    maxAge: z.number().int().min(-1).default(1800),
    allowCredentials: z.boolean().default(false),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (!s.allowCredentials) return;
    // The Fetch spec's CORS protocol: with credentials a browser reads `*` literally and refuses the origin `*`;
    // answering every origin by name instead would let any site read credentialed answers.
    const refuse = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (s.allowOrigins.includes('*')) refuse('allowOrigins', "must list origins, not '*', with allowCredentials: true (any site could read credentialed answers)");
    if (s.allowOrigins.includes('null')) refuse('allowOrigins', "must not allow the origin 'null' with allowCredentials: true (sandboxed iframes and data: URLs send it)");
    if (s.exposeHeaders.includes('*')) refuse('exposeHeaders', "must list the headers, not '*', with allowCredentials: true (browsers read '*' as a header name)");
  });

export const accessControlSpec = z
  .object({
    /** Checked in order; the first rule whose addresses hold the client decides. */
    rules: z.array(z.object({ action: z.enum(['ALLOW', 'DENY']), sourceAddresses: z.array(z.string().min(1)).min(1) }).strict()).min(1),
    noRuleMatchAction: z.enum(['ALLOW', 'DENY']).default('ALLOW'),
    /** Peers whose X-Forwarded-For is believed: the client is then the right-most address not in this list. */
    trustedProxies: z.array(z.string().min(1)).default([]),
  })
  .strict();

const kvmEntryKey = z.string().min(1);

export const keyValueMapOperationsSpec = z
  .object({
    mapIdentifier: z.string().min(1),
    /** environment, or apiproduct: the map's entries for the product the request is entitled through. */
    scope: z.enum(['environment', 'apiproduct']).default('environment'),
    /** Reads into flow variables (dotted names, e.g. kvm.tier); keys are message templates. */
    get: z.array(z.object({ assignTo: z.string().min(1), key: kvmEntryKey, defaultValue: z.string().optional() }).strict()).default([]),
    /** Writes (keys and values are message templates); override: false keeps an existing value. */
    put: z.array(z.object({ key: kvmEntryKey, value: z.string(), override: z.boolean().default(true) }).strict()).default([]),
  })
  .strict()
  .refine((s) => s.get.length + s.put.length > 0, { message: 'give at least one get or put', path: ['get'] });

/** A key-value map: its entries live in the store (admin API /v1/keyvaluemaps); values encrypted at rest on request. */
export const keyValueMapSpec = z.object({ encrypted: z.boolean().default(false) }).strict();

export type AssignMessageSpec = z.output<typeof assignMessageSpec>;
export type OasValidationSpec = z.output<typeof oasValidationSpec>;
export type CorsSpec = z.output<typeof corsSpec>;
export type AccessControlSpec = z.output<typeof accessControlSpec>;
export type KeyValueMapOperationsSpec = z.output<typeof keyValueMapOperationsSpec>;
export type KeyValueMapSpec = z.output<typeof keyValueMapSpec>;
