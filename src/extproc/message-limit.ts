// The gRPC message size both ends of tollgate's ext_proc allow, so the server and the client agree.
import { DEFAULT_SETTINGS } from '../config/settings.js';

/**
 * Envoy sends a BUFFERED body as one message, and an answer that rewrites it (or gives back a STREAMED body held
 * chunk by chunk) carries it whole: grpc-js's default 4 MiB limit failed the stream of any body between that and
 * maxBodyBytes, and of one over it too (a gRPC error where a 413 belongs). The limit leaves room for a body over
 * maxBodyBytes to arrive and be answered 413 (up to 64 MiB, or twice the limit).
 */
export function maxMessageBytes(maxBodyBytes: number = DEFAULT_SETTINGS.server.maxBodyBytes): number {
  return Math.max(64 * 1024 * 1024, 2 * maxBodyBytes);
}
