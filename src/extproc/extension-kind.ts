// The ExtensionChain kind (tollgate.dev/v1alpha1): external ext_proc servers the data plane calls on its request
// and response path, shaped after GKE's GCPTrafficExtension extension entries.
import { createSecureContext } from 'node:tls';
import { z } from 'zod';
import { durationMs } from '../lib/duration.js';
import { readCaFile, readTlsFile, TlsFilesError, unusablePair } from '../lib/tls-files.js';
import type { ClientTls } from './client.js';

export const EXTENSION_CHAIN_API_VERSION = 'tollgate.dev/v1alpha1';

const bodyMode = z.enum(['BUFFERED', 'STREAMED']);

type TlsFileNames = { ca?: string; cert?: string; key?: string };

/**
 * An extension's PEM files, read and checked (a CA file whose certificates parse, a key that matches its certificate).
 * Throws TlsFilesError naming which.
 * @example new ExtprocClient({ address, tls: readExtensionTls({ ca: 'ca.pem', cert: 'client.pem', key: 'client.key' }) })
 */
export function readExtensionTls(files: TlsFileNames): ClientTls {
  const tls: ClientTls = {
    ca: files.ca === undefined ? null : readCaFile(files.ca),
    cert: files.cert === undefined ? null : readTlsFile('cert', files.cert),
    key: files.key === undefined ? null : readTlsFile('key', files.key),
  };
  if (tls.cert && tls.key) {
    try {
      // What grpc-js does with them as it makes the channel, where a throw ended the process on a reload.
      createSecureContext({ cert: tls.cert, key: tls.key });
    } catch (err) {
      throw unusablePair(err);
    }
  }
  return tls;
}

/**
 * The files' bytes (`pem`), read where the configuration loads, as upstream.caFile is: one that cannot be read or used
 * is a configuration error naming the field, which stops a start (exit 2) or rejects a reload (the last good
 * configuration stays). A file changed on disk alone is read again at the next reload.
 */
function withPem(files: TlsFileNames, ctx: z.RefinementCtx): TlsFileNames & { pem: ClientTls } {
  try {
    return { ...files, pem: readExtensionTls(files) };
  } catch (err) {
    const path = err instanceof TlsFilesError && err.role !== 'pair' ? [err.role] : [];
    ctx.addIssue({ code: 'custom', path, message: (err as Error).message });
    return z.NEVER;
  }
}

const extensionSpec = z
  .object({
    name: z.string().min(1),
    /** host:port of the ext_proc (gRPC) server. */
    address: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):\d{1,5}$/, 'address must be host:port'),
    /** :authority sent to the server. */
    authority: z.string().min(1).optional(),
    /** PEM files: `ca` verifies the server; `cert` and `key` present a client certificate (mTLS). */
    tls: z
      .object({ ca: z.string().min(1).optional(), cert: z.string().min(1).optional(), key: z.string().min(1).optional() })
      .strict()
      .refine((t) => !!t.cert === !!t.key, { message: 'tls.cert and tls.key go together' })
      .transform(withPem)
      .optional(),
    supportedEvents: z.array(z.enum(['RequestHeaders', 'RequestBody', 'ResponseHeaders', 'ResponseBody'])).min(1),
    requestBodySendMode: bodyMode.default('BUFFERED'),
    /** SSE answers are only observed (observability mode): their bytes reach the client as they come. */
    responseBodySendMode: bodyMode.default('BUFFERED'),
    /** Per message, like Envoy's message_timeout (10ms to 10s). */
    timeout: durationMs.pipe(z.number().min(10, 'timeout must be at least 10ms').max(10_000, 'timeout must be at most 10s')).default(1000),
    /** When the extension cannot answer in time: go on without it (true) or answer 500 before anything is sent (false). */
    failOpen: z.boolean().default(false),
  })
  .strict();

export const extensionChainSpec = z
  .object({
    /** Called in this order on the request; their answers pass back in the reverse order. */
    extensions: z.array(extensionSpec).min(1),
  })
  .strict()
  .refine((s) => new Set(s.extensions.map((e) => e.name)).size === s.extensions.length, { message: 'extension names must be unique', path: ['extensions'] });

export type ExtensionChainSpec = z.output<typeof extensionChainSpec>;
