// A message Envoy should never have sent in this order or shape: the stream ends with this gRPC status.
import type { status } from '@grpc/grpc-js';
import { loadGrpc } from './grpc.js';

export class ProtocolError extends Error {
  readonly code: status;

  constructor(code: status, message: string) {
    super(message);
    this.code = code;
  }
}

export const outOfOrder = (message: string) => new ProtocolError(loadGrpc().status.FAILED_PRECONDITION, message);
export const malformed = (message: string) => new ProtocolError(loadGrpc().status.INVALID_ARGUMENT, message);
