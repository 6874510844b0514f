// The ExtensionChain kind (tollgate.dev/v1alpha1): external ext_proc servers the data plane calls on its request
// and response path, shaped after GKE's GCPTrafficExtension extension entries.
import { z } from 'zod';
import { durationMs } from '../lib/duration.js';

export const EXTENSION_CHAIN_API_VERSION = 'tollgate.dev/v1alpha1';

const bodyMode = z.enum(['BUFFERED', 'STREAMED']);

const extensionSpec = z
  .object({
    name: z.string().min(1),
    /** host:port of the ext_proc (gRPC) server. */
    address: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):\d{1,5}$/, 'address must be host:port'),
    /** :authority sent to the server. */
    authority: z.string().min(1).optional(),
    /** PEM files: `ca` verifies the server; `cert` and `key` present a client certificate (mTLS). */
    tls: z.object({ ca: z.string().min(1).optional(), cert: z.string().min(1).optional(), key: z.string().min(1).optional() }).strict().optional(),
    supportedEvents: z.array(z.enum(['RequestHeaders', 'RequestBody', 'ResponseHeaders', 'ResponseBody'])).min(1),
    requestBodySendMode: bodyMode.default('BUFFERED'),
    /** SSE answers are only observed (observability mode): their bytes reach the client as they come. */
    responseBodySendMode: bodyMode.default('BUFFERED'),
    /** Per message, like Envoy's message_timeout (10ms to 10s). */
    timeout: durationMs.pipe(z.number().min(10, 'timeout must be at least 10ms').max(10_000, 'timeout must be at most 10s')).default(1000),
    /** When the extension cannot answer in time: go on without it (true) or answer 500 before anything is sent (false). */
    failOpen: z.boolean().default(false),
  })
  .strict()
  .refine((e) => !e.tls || !!e.tls.cert === !!e.tls.key, { message: 'tls.cert and tls.key go together', path: ['tls'] });

export const extensionChainSpec = z
  .object({
    /** Called in this order on the request; their answers pass back in the reverse order. */
    extensions: z.array(extensionSpec).min(1),
  })
  .strict()
  .refine((s) => new Set(s.extensions.map((e) => e.name)).size === s.extensions.length, { message: 'extension names must be unique', path: ['extensions'] });

export type ExtensionChainSpec = z.output<typeof extensionChainSpec>;
