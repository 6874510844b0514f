// Schemas of the Inference Extension kinds (InferencePool, InferenceModel, InferenceObjective,
// InferenceModelRewrite, EndpointPickerConfig) and the HTTPRoute subset tollgate reads.
import { z } from 'zod';
import { timerMs } from '../lib/duration.js';

const objectRef = z.object({ name: z.string().min(1), kind: z.string().optional(), group: z.string().optional() }).strict();

/** Whether `u` names a server and nothing more: requests keep their own path (/v1/chat/completions...). */
function isOrigin(u: string): boolean {
  if (!URL.canParse(u)) return true; // the url check reports it
  const url = new URL(u);
  return (url.pathname === '/' || url.pathname === '') && url.search === '' && url.hash === '' && url.username === '' && url.password === '';
}

const endpointUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'endpoint must be an http:// or https:// URL')
  // Before, a path was dropped from a pool endpoint without a word, and made every request of a route a 500.
  .refine(isOrigin, 'endpoint must be an origin, http[s]://host[:port], without a path, query or credentials: the request keeps its own path')
  // WHATWG URLs take `$`, `{` and `}` in a host name, which no DNS name holds: `http://${VLLM_HOST}:8000`, written for
  // envsubst, passed validate and was looked up as a host forever, its endpoint never healthy.
  .refine((u) => !URL.canParse(u) || !/[${}]/.test(new URL(u).hostname), 'endpoint host holds `$`, `{` or `}`: tollgate does not expand ${VARIABLES} in manifests (run them through envsubst first)');

export const inferencePoolSpec = z
  .object({
    selector: z
      .object({ matchLabels: z.record(z.string(), z.string()) })
      .strict()
      .optional(),
    targetPorts: z
      .array(z.object({ number: z.number().int().min(1).max(65535) }).strict())
      .min(1)
      .max(8)
      .optional(),
    endpointPickerRef: z
      .object({
        group: z.string().optional(),
        kind: z.string().optional(),
        name: z.string().min(1),
        port: z.object({ number: z.number().int() }).strict().optional(),
        failureMode: z.enum(['FailOpen', 'FailClose']).default('FailClose'),
      })
      .strict()
      .optional(),
    appProtocol: z.string().optional(),
    /** tollgate: static endpoints when not on Kubernetes. The URL's port wins over targetPorts. */
    endpoints: z.array(endpointUrl).min(1),
    /** tollgate: which model-server metric names to scrape. */
    engine: z.enum(['vllm', 'sglang', 'trtllm']).default('vllm'),
  })
  .strict();

// As upstream.firstByteTimeout/responseTimeout: 0 would time out every request, not lift the limit.
const modelTimeouts = z
  .object({ firstByte: timerMs.optional(), response: timerMs.optional() })
  .strict();

export const inferenceModelSpec = z
  .object({
    modelName: z.string().min(1),
    criticality: z.enum(['Critical', 'Standard', 'Sheddable']).default('Standard'),
    targetModels: z
      .array(z.object({ name: z.string().min(1), weight: z.number().int().min(0).max(1_000_000).default(1) }).strict())
      .optional(),
    poolRef: objectRef,
    /** tollgate: per-model upstream timeouts overriding GatewaySettings.upstream. */
    timeouts: modelTimeouts.optional(),
  })
  .strict()
  .refine((s) => !s.targetModels || s.targetModels.some((t) => t.weight > 0), {
    message: 'at least one targetModel needs a weight above 0',
    path: ['targetModels'],
  });

export const inferenceObjectiveSpec = z
  .object({ priority: z.number().int().default(0), poolRef: objectRef })
  .strict();

export const inferenceModelRewriteSpec = z
  .object({
    poolRef: objectRef.optional(),
    rules: z
      .array(
        z
          .object({
            matches: z
              .array(z.object({ model: z.object({ type: z.literal('Exact').default('Exact'), value: z.string().min(1) }).strict() }).strict())
              .min(1),
            targets: z
              .array(z.object({ weight: z.number().int().min(0).default(1), modelRewrite: z.string().min(1) }).strict())
              .min(1)
              .refine((t) => t.some((x) => x.weight > 0), 'at least one target needs a weight above 0'),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();

/** The picker's plugins and profiles, as in the Inference Extension; plugin parameters are checked by each plugin's factory. */
export const endpointPickerConfigSpec = z
  .object({
    poolRef: objectRef.optional(),
    plugins: z
      .array(z.object({ type: z.string().min(1), name: z.string().min(1).optional(), parameters: z.record(z.string(), z.unknown()).optional() }).strict())
      .min(1),
    schedulingProfiles: z
      .array(
        z
          .object({
            name: z.string().min(1),
            plugins: z.array(z.object({ pluginRef: z.string().min(1), weight: z.number().min(0).optional() }).strict()).min(1),
          })
          .strict(),
      )
      .optional(),
    /**
     * Tollgate's gateway-side flow control for the pool (saturation detection, holding requests once every batch is
     * full, shedding sheddable work). enabled (default true): false dispatches every request at once to the profile's
     * choice, as a plain load balancer would. batchCapacity (default 0, learnt): requests each endpoint runs at once
     * (vLLM max-num-seqs). reservedSlots (default 1): batch slots per endpoint only requests above priority 0 may
     * take, while any such request runs in the pool. The defaults live in the scheduler, so specs written in code may
     * leave them out.
     */
    flowControl: z
      .object({ enabled: z.boolean().optional(), batchCapacity: z.number().int().min(0).optional(), reservedSlots: z.number().int().min(0).optional() })
      .strict()
      .optional(),
  })
  .strict();

const pathMatch = z
  .object({ type: z.enum(['PathPrefix', 'Exact']).default('PathPrefix'), value: z.string().startsWith('/') })
  .strict();
const headerMatch = z
  .object({ type: z.literal('Exact').default('Exact'), name: z.string().min(1), value: z.string() })
  .strict();

const backendRef = z.union([
  z.object({ kind: z.literal('InferencePool'), group: z.string().optional(), name: z.string().min(1), weight: z.number().int().min(0).default(1) }).strict(),
  z.object({ url: endpointUrl, weight: z.number().int().min(0).default(1) }).strict(),
]);

/**
 * Gateway API's hostname: an RFC 1123 name in lower case, or one prefixed with a wildcard label (`*.example.com`); no
 * IP address, no port.
 */
const hostname = z
  .string()
  .max(253)
  .regex(/^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a lower-case host name, optionally prefixed with "*." (no port, no IP address)')
  .refine((h) => !/^(\d+\.){3}\d+$/.test(h), 'must be a host name, not an IP address');

export const httpRouteSpec = z
  .object({
    /** Accepted so a Gateway API route validates; tollgate is the one gateway it attaches to. */
    parentRefs: z.array(z.record(z.string(), z.unknown())).optional(),
    hostnames: z.array(hostname).max(16).optional(),
    rules: z
      .array(
        z
          .object({
            matches: z.array(z.object({ path: pathMatch.optional(), headers: z.array(headerMatch).optional(), method: z.string().optional() }).strict()).optional(),
            backendRefs: z.array(backendRef).min(1),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();

export type InferencePoolSpec = z.output<typeof inferencePoolSpec>;
export type InferenceModelSpec = z.output<typeof inferenceModelSpec>;
export type InferenceObjectiveSpec = z.output<typeof inferenceObjectiveSpec>;
export type InferenceModelRewriteSpec = z.output<typeof inferenceModelRewriteSpec>;
export type EndpointPickerConfigSpec = z.output<typeof endpointPickerConfigSpec>;
export type HttpRouteSpec = z.output<typeof httpRouteSpec>;
