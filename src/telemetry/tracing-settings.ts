// tracingSettingsSpec: the `tracing` section of GatewaySettings. Tracing is off unless an OTLP endpoint is given.
import { z } from 'zod';
import { timerMsOr } from '../lib/duration.js';

export const tracingSettingsSpec = z
  .object({
    /** OTLP/HTTP collector, e.g. http://otel-collector:4318 (spans go to /v1/traces unless the URL has a path). */
    endpoint: z.url({ protocol: /^https?$/ }).optional(),
    /** Share of new traces recorded (0..1), and of the requests whose sampled traceparent is not followed. */
    sampleRatio: z.number().min(0).max(1).default(1),
    /**
     * Share of the requests carrying a sampled traceparent that follow it (0..1, as Envoy's client_sampling): any
     * caller may send one, so 1 lets every caller have its requests traced whatever sampleRatio says.
     */
    clientSampling: z.number().min(0).max(1).default(1),
    serviceName: z.string().min(1).default('tollgate'),
    /** Sent with every export (e.g. a collector's API key). */
    headers: z.record(z.string(), z.string()).default({}),
    /** How long finished spans are batched before they are exported. */
    exportInterval: timerMsOr('1s'),
    /**
     * A span per request policy under `policies` (as Kong's plugin instrumentation gives): detail for debugging a
     * chain, at the price of a few more spans per traced request, so off unless asked for.
     */
    policySpans: z.boolean().default(false),
  })
  .strict()
  .prefault({});

export type TracingSettings = z.output<typeof tracingSettingsSpec>;
