// A message Envoy should never have sent in this order or shape: the stream ends with this gRPC status.
import { status } from '@grpc/grpc-js';

export class ProtocolError extends Error {
  readonly code: status;

  constructor(code: status, message: string) {
    super(message);
    this.code = code;
  }
}

export const outOfOrder = (message: string) => new ProtocolError(status.FAILED_PRECONDITION, message);
export const malformed = (message: string) => new ProtocolError(status.INVALID_ARGUMENT, message);
