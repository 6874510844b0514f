// The engine's seams: a policy instance, its factory, the per-request state policies share, and what runs after the exchange.
import type { RequestContext } from '../gateway/context.js';
import type { ResponseFlow } from '../gateway/hooks.js';
import type { Logger } from '../lib/logger.js';
import type { CacheResources } from './caching/cache-resources.js';
import type { CacheScope } from './caching/cache-scope.js';
import type { CounterGuard } from './counter-guard.js';
import type { IdentitySource, KeyRecord, OperationSetGrant, ProductGrant } from './identity.js';
import type { QuotaUsage } from './quota-usage.js';
import type { PromptCalibration } from './prompt-calibration.js';
import type { TokensInFlight } from './tokens-in-flight.js';

/** One step of a compiled flow: a policy's phase method, bound. Returns a promise only when it must wait. */
export type Step = (ctx: RequestContext, state: ApimState) => void | Promise<void>;

/** A policy's response phase, bound: its part of the response flow for this answer, or undefined. */
export type RespondStep = (ctx: RequestContext, state: ApimState, status: number) => ResponseFlow | undefined;

/** The compiled steps of one flow, per phase; null when the phase has no work. */
export interface Phases {
  readonly intercept: readonly Step[] | null;
  readonly authenticate: readonly Step[] | null;
  readonly admit: readonly Step[] | null;
  readonly respond: readonly RespondStep[] | null;
}

/** Work left for the response flow (token reconciliation): run once when the exchange is over. */
export interface Settler {
  /** Done when it returns, or once its promise resolves; never fails (nobody is left to tell). */
  settle(ctx: RequestContext): void | Promise<void>;
}

/** What policies learn about a request and hand to the ones after them. One object per request, created lazily. */
export interface ApimState {
  /** The engine's: the phases of the flow that first saw this request, so a reload cannot mix two flows. */
  phases?: Phases;
  /** Flow variables set by policies (KVM reads, JWT claims, callout answers), read by name like built-in variables. */
  vars?: Map<string, string>;
  /** Set by VerifyAPIKey. */
  key?: KeyRecord;
  /** Set by a CORS policy that ran: the answer's CORS headers are its alone, the model server's are dropped. */
  corsDecided?: true;
  /** Set by entitlement: the product and operation set that decided. */
  product?: ProductGrant;
  operationSet?: OperationSetGrant;
  /** The prompt's token estimate, computed once for every policy that needs it. */
  promptTokens?: number;
  /** The most restrictive request figure so far, so only the tightest limit shows in the headers. */
  requestsRemaining?: number;
  /** Each token quota's figures for the headers (rate-limit-headers.ts), and whether one of them refused. */
  tokenFigures?: TokenFigure[];
  tokenRefusal?: boolean;
  settlers?: Settler[];
  /**
   * A response check could not judge this answer (SanitizeModelResponse's classifier sees no streams), a policy that
   * changes answers did not run for this request (its template condition was false), or one rewrote it from the
   * request itself: no cache stores it, since a replay skips the response flow of the requests it answers.
   */
  answerUnjudged?: boolean;
  /**
   * The widest cache scope whose every request the response policies would give this answer: `app` after a rewrite
   * from the caller's key or entitlement, `product` when products rewrite answers in
   * templates of their own; unset, any.
   */
  answerSharedWithin?: Exclude<CacheScope, 'global'>;
}

/** What a token quota had left after this request's reservation, and how much that reservation was. */
export interface TokenFigure {
  limit: number;
  remaining: number;
  resetMs: number;
  reserved: number;
}

export interface Policy {
  /** The kind in kebab-case, e.g. 'spike-arrest'. */
  readonly type: string;
  /** metadata.name of the policy's manifest, so one kind can be configured twice. */
  readonly name: string;
  /** Reads the key's products (useQuotaConfigInAPIProduct): the flow must verify an API key. */
  readonly needsApiKey?: boolean;
  /** Finds the caller's app key (VerifyAPIKey, OAuthV2 VerifyAccessToken): one listed without a condition replaces the default VerifyAPIKey. */
  readonly identifiesKey?: boolean;
  /**
   * What its response flow does to the answer a cache keeps (the body or the events; a hit gets the header changes of
   * its own request anew): `none` (it only observes, as a cache filling, or changes headers alone), `perApp` (a
   * rewrite from the caller's key or entitlement: the same for every request of one app), `perRequest` (a rewrite
   * from the request itself: its headers, client address, flow variables, a script); unset, it may change or refuse
   * the answer, the same way for every request (a sanitizer, a response validation).
   */
  readonly answerEdits?: 'none' | 'perApp' | 'perRequest';
  /**
   * Starts what serving needs running (JavaScript's sandbox workers), so the first request does not wait for it. Called
   * for the policies a compiled flow runs, not by the factory: a policy no template lists is built only to check it.
   */
  start?(): void;
  /**
   * First, for every request, before routing and the body: may answer through `ctx.directResponse` (a CORS
   * preflight, the OAuth token endpoint; `ctx.readBody()` reads the body) or throw a fault (IP access control).
   */
  intercept?(ctx: RequestContext, state: ApimState): void | Promise<void>;
  /** Credentials, before model lookup (401). */
  authenticate?(ctx: RequestContext, state: ApimState): void | Promise<void>;
  /**
   * Entitlement and limits, after model lookup (401, 429). May set `ctx.directResponse` (a cache hit): the admit steps
   * listed after it then do not run (phaseSteps).
   */
  admit?(ctx: RequestContext, state: ApimState): void | Promise<void>;
  /**
   * When the model server's answer starts: this policy's part of the response flow (header changes, a whole-body
   * rewrite for JSON answers, a per-event rewrite for streams), or undefined. The engine chains the policies' flows
   * in order. The answer has started: `respond`, `headers` and `event` must not throw; `body` may (the client then
   * gets that fault instead of the answer).
   */
  respond?(ctx: RequestContext, state: ApimState, status: number): ResponseFlow | undefined;
  /**
   * Quota policies, for GET /v1/tollgate/quota: what this policy's counter holds for the caller in `state` (the key,
   * and the product and operation set asked about), read without counting; null when no limit applies to them.
   */
  usage?(ctx: RequestContext, state: ApimState): Promise<QuotaUsage | null>;
}

/** Key-value map entries for policies: read from memory (decrypted), written through to the store. */
export interface KvmLookup {
  /** `scope` is 'environment' or `apiproduct:<name>`. @throws Error for an entry that exists but cannot be read. */
  get(scope: string, map: string, key: string): string | undefined;
  /**
   * Resolves once stored (`override: false`: unless the entry exists); reads see the value at once on this replica.
   * @throws Error when the map is not declared, or cannot be written.
   */
  put(scope: string, map: string, key: string, value: string, override: boolean): Promise<void>;
}

export interface PolicyDeps {
  counters: CounterGuard;
  identity: IdentitySource;
  /** Epoch milliseconds; injected so windows can be tested. */
  now: () => number;
  /** Key-value maps (KeyValueMapOperations); absent where no store is attached. */
  kvm?: KvmLookup;
  /** The gateway's cache stores (ResponseCache, semantic caches), which outlive engine rebuilds. */
  caches?: CacheResources;
  /** What the model servers count beyond tollgate's prompt estimates (LLMTokenQuota), kept across engine rebuilds. */
  promptCalibration?: PromptCalibration;
  /** The gateway's, which outlives engine rebuilds (LLMTokenQuota). */
  tokensInFlight?: TokensInFlight;
  /** For what an operator must hear about (an IdP's JWKS that cannot be fetched); silent when absent. */
  logger?: Logger;
}

/** Validates `spec` (the kind's zod schema), applies defaults, precomputes, and returns the instance. */
export type PolicyFactory = (name: string, spec: unknown, deps: PolicyDeps) => Policy;
