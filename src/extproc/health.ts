// grpc.health.v1.Health for the ext_proc listener: Check and Watch for the server as a whole (""), the
// ExternalProcessor service and the Endpoint Picker Protocol's `readiness`, all NOT_SERVING once shutdown begins so
// Envoy's health checks stop sending streams; and the protocol's `liveness`, SERVING while the process runs.
import type { ServerUnaryCall, ServerWritableStream, UntypedServiceImplementation, sendUnaryData } from '@grpc/grpc-js';
import { loadGrpc } from './grpc.js';
import { EXT_PROC_SERVICE } from './protos.js';

export const SERVING = 1;
export const NOT_SERVING = 2;
export const SERVICE_UNKNOWN = 3;

/** The names the Inference Extension's Endpoint Picker Protocol has probes and manifests ask for. */
const LIVENESS = 'liveness';
const READINESS = 'readiness';

interface CheckRequest {
  service?: string;
}
interface CheckResponse {
  status: number;
}

export class HealthService {
  #status = SERVING;
  readonly #watchers = new Set<ServerWritableStream<CheckRequest, CheckResponse>>();

  set(next: typeof SERVING | typeof NOT_SERVING): void {
    if (next === this.#status) return;
    this.#status = next;
    for (const w of this.#watchers) if (followsServer(w.request.service)) w.write({ status: next });
  }

  /** Ends every Watch (they would hold the server open). */
  close(): void {
    for (const w of this.#watchers) w.end();
    this.#watchers.clear();
  }

  readonly handlers: UntypedServiceImplementation = {
    Check: (call: ServerUnaryCall<CheckRequest, CheckResponse>, callback: sendUnaryData<CheckResponse>) => {
      const status = this.#statusOf(call.request.service);
      if (status === undefined) callback({ code: loadGrpc().status.NOT_FOUND, details: `unknown service ${call.request.service}` });
      else callback(null, { status });
    },
    Watch: (call: ServerWritableStream<CheckRequest, CheckResponse>) => {
      call.write({ status: this.#statusOf(call.request.service) ?? SERVICE_UNKNOWN });
      this.#watchers.add(call);
      call.on('cancelled', () => this.#watchers.delete(call));
    },
  };

  /** undefined for a service this server does not know. */
  #statusOf(service: string | undefined): number | undefined {
    if (service === LIVENESS) return SERVING;
    return followsServer(service) ? this.#status : undefined;
  }
}

function followsServer(service: string | undefined): boolean {
  return !service || service === EXT_PROC_SERVICE || service === READINESS;
}
