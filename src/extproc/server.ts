// The ext_proc listener: envoy.service.ext_proc.v3.ExternalProcessor/Process, one stream per HTTP request, playing
// the policy decision point, the endpoint picker or both; grpc.health.v1 on the same port; optional TLS or mTLS.
import { createServer, type Server as NetServer } from 'node:net';
import type { ConnectionInjector, Server, ServerCredentials, ServerDuplexStream } from '@grpc/grpc-js';
import { loadGrpc } from './grpc.js';
import type { DataPlane } from '../gateway/data-plane.js';
import type { Logger } from '../lib/logger.js';
import { readCaFile, readTlsFile, unusablePair } from '../lib/tls-files.js';
import type { RequestContext } from '../gateway/context.js';
import { HealthService, NOT_SERVING } from './health.js';
import { maxMessageBytes } from './message-limit.js';
import type { ProcessingRequest, ProcessingResponse } from './messages.js';
import { ProcessStream, type StreamSettings } from './process-stream.js';
import { extProcService, healthService } from './protos.js';

export type ExtprocRole = 'pdp' | 'epp';

export interface ExtprocServerOptions {
  /** 0 picks a free port (see `port` on the server). */
  port: number;
  /** Default 0.0.0.0. */
  host?: string;
  /** Policy decision point, endpoint picker, or both in one stream (the default). */
  roles?: readonly ExtprocRole[];
  /** PEM files; with `ca`, clients must present a certificate it signed (mTLS). */
  tls?: { cert: string; key: string; ca?: string };
  /**
   * Envoy's processing_mode.request_body_mode, which its messages do not tell. Unset, a body message without
   * end_of_stream is a chunk of a STREAMED body. BUFFERED: it is the whole body of a request with trailers.
   * BUFFERED_PARTIAL: it is a body cut at Envoy's buffer limit (answered 413).
   */
  requestBodyMode?: 'BUFFERED' | 'BUFFERED_PARTIAL' | 'STREAMED';
  /**
   * Envoy's processing_mode.response_body_mode. Unset, a body message without end_of_stream is a chunk of a STREAMED
   * answer, and Envoy may send no answer bodies at all (NONE): a stream that ends before an answer's body does, as
   * Envoy ends every stream, leaves that answer unseen (its status, if its headers came; its token reservation kept).
   * BUFFERED: a body message without end_of_stream is the whole body of an answer with trailers. Told either mode,
   * Envoy sends every answer's body, so a stream that ends before its end was cut: a hang-up, as on HTTP.
   */
  responseBodyMode?: 'BUFFERED' | 'STREAMED';
  /**
   * HTTP/2 pings on each connection, every `timeMs` (grpc-js pings whether or not data flows), and the connection
   * (with its streams) closed when no ack comes within `timeoutMs`: an Envoy gone without a FIN or RST gives back
   * the picks its streams held. Default 30 s and 10 s.
   */
  keepalive?: { timeMs: number; timeoutMs: number };
  /** How much longer than the model's response timeout Envoy may leave a stream silent before it is cancelled (default 30 s). */
  idleMarginMs?: number;
}

const KEEPALIVE = { timeMs: 30_000, timeoutMs: 10_000 };
const IDLE_MARGIN_MS = 30_000;
const MAX_TIMER_MS = 2 ** 31 - 1;
const SHUTTING_DOWN = 'the ext_proc server is shutting down';

export interface ExtprocDeps {
  dataPlane: DataPlane;
  logger: Logger;
}

function credentials(tls: ExtprocServerOptions['tls']): ServerCredentials {
  const { ServerCredentials } = loadGrpc();
  if (!tls) return ServerCredentials.createInsecure();
  // grpc-js takes a CA file in which no certificate parses, and its listener then refuses every client without a word.
  const ca = tls.ca ? readCaFile(tls.ca) : null;
  return ServerCredentials.createSsl(ca, [{ private_key: readTlsFile('key', tls.key), cert_chain: readTlsFile('cert', tls.cert) }], ca !== null);
}

/** An Envoy that sends no request bodies is a configuration to fix, said once a minute rather than per request. */
function unjudgedWarning(logger: Logger): (ctx: RequestContext) => void {
  let last = -Infinity;
  return (ctx) => {
    const now = performance.now();
    if (now - last < 60_000) return;
    last = now;
    logger.error(
      { requestId: ctx.id, path: ctx.path },
      "an ext_proc request reached its answer without its body ever reaching tollgate, so no policy judged it: Envoy's processing_mode.request_body_mode must be BUFFERED (or STREAMED) for tollgate to decide; answers it is shown are withheld (500)",
    );
  };
}

export class ExtprocServer {
  readonly #server: Server;
  readonly #health = new HealthService();
  readonly #streams = new Set<ProcessStream>();
  #idle: (() => void)[] = [];
  #draining = false;
  #net: NetServer | null = null;
  #injector: ConnectionInjector | null = null;
  port = 0;
  /** The largest body its gRPC message limit, fixed at start, lets through (a larger maxBodyBytes needs a restart). */
  readonly maxBodyBytes: number;

  constructor(deps: ExtprocDeps, options: ExtprocServerOptions) {
    const limit = maxMessageBytes(deps.dataPlane.config.settings.server.maxBodyBytes);
    this.maxBodyBytes = limit / 2;
    // grpc-js pings no client unless told to: a vanished Envoy's streams, and their picks, were held for ever.
    const keepalive = options.keepalive ?? KEEPALIVE;
    this.#server = new (loadGrpc().Server)({
      'grpc.max_receive_message_length': limit,
      'grpc.max_send_message_length': limit,
      'grpc.keepalive_time_ms': keepalive.timeMs,
      'grpc.keepalive_timeout_ms': keepalive.timeoutMs,
    });
    const roles = options.roles ?? ['pdp', 'epp'];
    if (roles.length === 0) throw new Error('an ext_proc listener needs at least one role (pdp, epp)');
    const settings: StreamSettings = {
      dataPlane: deps.dataPlane,
      roles: { pdp: roles.includes('pdp'), epp: roles.includes('epp') },
      truncatedBodies: options.requestBodyMode === 'BUFFERED_PARTIAL',
      wholeBodies: options.requestBodyMode === 'BUFFERED',
      wholeResponses: options.responseBodyMode === 'BUFFERED',
      answerBodies: options.responseBodyMode !== undefined,
      idleMarginMs: options.idleMarginMs ?? IDLE_MARGIN_MS,
      created: Math.floor(Date.now() / 1000),
      logger: deps.logger,
      unjudged: unjudgedWarning(deps.logger),
    };
    this.#server.addService(extProcService(), {
      Process: (call: ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => {
        // Draining, the port stays open for health checks only: a stream on a connection opened since is refused.
        if (this.#draining) return void call.emit('error', { code: loadGrpc().status.UNAVAILABLE, details: SHUTTING_DOWN });
        const stream: ProcessStream = new ProcessStream(call, settings, () => {
          this.#streams.delete(stream);
          if (this.#streams.size === 0) for (const w of this.#idle.splice(0)) w();
        });
        this.#streams.add(stream);
      },
    });
    this.#server.addService(healthService(), this.#health.handlers);
  }

  /** Streams in progress. */
  get streams(): number {
    return this.#streams.size;
  }

  /**
   * Accepts the TCP connections itself and hands them to grpc-js, which sets TCP_NODELAY on its client sockets only:
   * with Nagle's algorithm on, an answer written in two pieces (headers, then data) can wait for the peer's delayed
   * ACK, up to 40 ms on Linux.
   */
  listen(options: ExtprocServerOptions): Promise<number> {
    const injector = (this.#injector = this.#injectorFor(options.tls));
    const net = (this.#net = createServer({ noDelay: true }, (socket) => injector.injectConnection(socket)));
    return new Promise((resolve, reject) => {
      net.once('error', reject);
      net.listen(options.port, options.host ?? '0.0.0.0', () => {
        net.off('error', reject);
        this.port = (net.address() as { port: number }).port;
        resolve(this.port);
      });
    });
  }

  #injectorFor(tls: ExtprocServerOptions['tls']): ConnectionInjector {
    const creds = credentials(tls);
    try {
      return this.#server.createConnectionInjector(creds);
    } catch (err) {
      if (!tls) throw err;
      throw unusablePair(err);
    }
  }

  /**
   * Reports NOT_SERVING and takes no new stream (GOAWAY, then UNAVAILABLE); resolves once the streams in progress are
   * over, or after `graceMs`. Called again, it only waits.
   */
  async drain(graceMs: number): Promise<void> {
    if (!this.#draining) {
      this.#draining = true;
      this.#health.set(NOT_SERVING);
      // GOAWAY: Envoy opens no new streams on these connections. No deadline of its own: close() cuts what is left,
      // after the refusals that the end of the grace sends (the injector's cut, at that moment, dropped them).
      this.#injector?.drain(MAX_TIMER_MS);
      // The listener stays open until close(): a health check (Envoy's and a probe's open a connection of their own)
      // sees NOT_SERVING, and `liveness` SERVING, for the whole drain; closed now, every check was refused instead.
    }
    if (this.#streams.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((resolve) => this.#idle.push(resolve)), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
  }

  /** Lets streams in progress finish within `graceMs` (drain), then cancels the rest. */
  async close(graceMs: number): Promise<void> {
    await this.drain(graceMs);
    this.#net?.close();
    this.#health.close();
    for (const s of this.#streams) s.cancel();
    this.#injector?.destroy();
    this.#server.forceShutdown();
  }
}

/**
 * @example
 * const extproc = await startExtprocServer({ dataPlane, logger }, { port: 9002, roles: ['pdp', 'epp'] });
 * // ... Envoy's ext_proc filter points at port 9002 ...
 * await extproc.close(5000);
 */
export async function startExtprocServer(deps: ExtprocDeps, options: ExtprocServerOptions): Promise<ExtprocServer> {
  const server = new ExtprocServer(deps, options);
  await server.listen(options);
  return server;
}
