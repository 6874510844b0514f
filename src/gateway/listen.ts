// Opening an HTTP or HTTPS listener with tollgate's timeouts against slow clients.
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, STATUS_CODES, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Server as HttpsServer, type ServerOptions as HttpsServerOptions } from 'node:https';
import { readTlsFile, unusablePair } from '../lib/tls-files.js';
import type { GatewaySettings } from '../config/settings.js';
import { GatewayError, gatewayError, type FaultFormat } from './errors.js';
import { adoptTargetHost, hostLineProblem } from './host-header.js';

export interface TlsFiles {
  cert: string;
  key: string;
}

/** Node's listener timeouts for these settings. */
function listenerTimeouts(settings: GatewaySettings['server']) {
  return {
    headersTimeout: settings.headersTimeout,
    // Node's whole-request timer backs up tollgate's own body deadline (which answers in the documented shape).
    requestTimeout: settings.headersTimeout + settings.bodyTimeout + 1000,
    keepAliveTimeout: settings.keepAliveTimeout,
  };
}

/**
 * How often Node looks for requests past headersTimeout/requestTimeout. Its default, 30 s, let a client that sent
 * half its headers hold the connection for up to 30 s more than headersTimeout (10 s by default). A fixed second
 * (it cannot change on a live listener) keeps both deadlines within a second of their setting, whatever a reload
 * sets them to.
 */
const CONNECTIONS_CHECKING_INTERVAL_MS = 1000;

/** What the data plane's paths take: OPTIONS only under a CORS policy, DELETE a stored response. */
const DATA_PLANE_METHODS = 'GET, HEAD, POST, DELETE';

/** Told the status of a refusal written before the handler: the data plane counts it. */
type OnRefused = ((status: number) => void) | undefined;

export interface ListenerOptions {
  tls?: TlsFiles;
  /** The methods the listener's paths take, for the Allow of its 405 to CONNECT (the data plane's by default). */
  methods?: string;
  /** The error body shape for what never reaches the handler (the data plane's configured one); OpenAI's without it. */
  faultFormat?: () => FaultFormat | undefined;
  /**
   * The request body limit now (a reload may change it): a client waiting on `Expect: 100-continue` whose declared
   * body is larger is not asked for it (its 413 comes at once). Without it every such client is asked.
   */
  maxBodyBytes?: () => number;
  /** Told the status of each answer written for a request that never reached the handler, to be counted. */
  onRefused?: OnRefused;
}

/** Requests whose client waited on `Expect: 100-continue` and was not asked for the body: it is never coming. */
const withheld = new WeakSet<IncomingMessage>();

export function bodyWithheld(req: IncomingMessage): boolean {
  return withheld.has(req);
}

/**
 * Requests whose body node:http could not parse (a bad chunk size or terminator, a chunk extension over its limit):
 * the parser's error, for the handler to answer (body.ts), as the log and metrics then record it.
 */
const malformed = new WeakMap<IncomingMessage, Error>();

export function malformedBody(req: IncomingMessage): Error | undefined {
  return malformed.get(req);
}

/**
 * Whether node:http's parser failed on the bytes the client sent (llhttp's codes), not at the end of the connection:
 * one that ends in mid-body (EOF) is a client hanging up, not a malformed request.
 */
function malformedBytes(err: Error & { code?: string }): boolean {
  return err.code !== undefined && err.code.startsWith('HPE_') && err.code !== 'HPE_INVALID_EOF_STATE';
}

/** A refusal of what never reaches the handler, counted: documented shape, x-request-id, and the connection closes. */
function closingAnswer(fault: GatewayError, format: FaultFormat | undefined, onRefused: OnRefused) {
  const { status, headers, body } = fault.toResponse(format);
  onRefused?.(status);
  return { status, body, head: { ...headers, 'content-length': Buffer.byteLength(body), 'x-request-id': randomUUID(), connection: 'close' } };
}

/** A closingAnswer written straight to the socket (node:http has no response object for it). */
function rawAnswer(socket: Duplex, fault: GatewayError, format: FaultFormat | undefined, onRefused: OnRefused): void {
  const { status, head, body } = closingAnswer(fault, format, onRefused);
  const lines = Object.entries(head).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${lines.join('')}\r\n${body}`);
  // Node has taken its timeouts off a socket it hands over (CONNECT): a client that kept its side open held it for
  // good. What the client still sends is read and dropped, and the socket goes once it has had time to read the answer
  // (a fixed time: a client sending bytes now and then would keep an idle timeout from ever firing).
  socket.resume();
  const timer = setTimeout(() => socket.destroy(), ANSWERED_SOCKET_MS);
  socket.once('close', () => clearTimeout(timer));
}

/** How long a connection answered straight on the socket (and closed on our side) waits for its client to close it. */
const ANSWERED_SOCKET_MS = 5000;

/** What node:http refused before the handler (a timeout, a malformed or oversized request) as tollgate's error. */
function clientFault(err: Error & { code?: string }): GatewayError {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return gatewayError('TG_ERR_REQUEST_TIMEOUT', err.message);
  const fault = gatewayError('TG_ERR_INVALID_REQUEST', err.message);
  // Node's own status for headers over its limit (RFC 6585 §5), kept; the code stays the malformed request's.
  return err.code === 'HPE_HEADER_OVERFLOW' ? new GatewayError(431, fault.type, fault.code, fault.message) : fault;
}

function refuseHost(res: ServerResponse, message: string, format: FaultFormat | undefined, onRefused: OnRefused): void {
  const { status, head, body } = closingAnswer(gatewayError('TG_ERR_INVALID_REQUEST', message), format, onRefused);
  res.writeHead(status, head);
  res.end(body);
}

/** The connections each listener has served a request on, until they close: those a reload may find idle. */
const servedConnections = new WeakMap<Server, Set<Socket>>();

function remember(connections: Set<Socket>, socket: Socket): void {
  if (connections.has(socket)) return;
  connections.add(socket);
  socket.once('close', () => connections.delete(socket));
}

/**
 * Reloaded settings on a live listener. Node reads these properties when it checks its connections and when a
 * response ends, so connections already open follow them too; nothing is dropped.
 */
export function applyListenerTimeouts(server: Server, settings: GatewaySettings['server']): void {
  const change = settings.keepAliveTimeout - server.keepAliveTimeout;
  Object.assign(server, listenerTimeouts(settings));
  if (change === 0) return;
  // Node arms an idle connection's keep-alive timer as its last response ends, from the value then (plus a margin of
  // its own): a connection idle now kept the old one. Only an idle connection has a timer (Node clears it as the next
  // request comes; the listeners set no other socket timeout), so a busy one is left alone. The new timeout counts
  // from now.
  for (const socket of servedConnections.get(server) ?? []) if (socket.timeout) socket.setTimeout(socket.timeout + change);
}

export function createListener(handler: RequestListener, settings: GatewaySettings['server'], { tls, faultFormat, maxBodyBytes, onRefused, methods = DATA_PLANE_METHODS }: ListenerOptions = {}): Server {
  // Host is checked here (RFC 9112 §3.2; hostLineProblem) rather than by Node, whose 400 has no body.
  const options = { ...listenerTimeouts(settings), connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS, requireHostHeader: false };
  const connections = new Set<Socket>();
  const served: RequestListener = (req, res) => {
    remember(connections, req.socket);
    // The Host line is checked even where an absolute-form target's host then replaces it.
    const lineProblem = hostLineProblem(req);
    if (lineProblem) return refuseHost(res, lineProblem, faultFormat?.(), onRefused);
    const targetProblem = adoptTargetHost(req);
    if (targetProblem) return refuseHost(res, targetProblem, faultFormat?.(), onRefused);
    handler(req, res);
  };
  // A client still in its TLS handshake gets no longer than one sending its headers (Node gives it 120 s). Fixed when
  // the listener opens: Node has no way to change it on a live one.
  const server: Server = tls ? httpsServer({ ...options, handshakeTimeout: settings.headersTimeout }, tls, served) : createHttpServer(options, served);
  servedConnections.set(server, connections);
  server.on('clientError', (err: Error & { code?: string }, socket) => {
    // A TLS handshake that failed or ran out of time: there is no HTTP on that connection to answer in.
    if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' || err.code?.startsWith('ERR_SSL_')) return socket.destroy();
    const answering = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    if (answering && malformedBytes(err)) {
      const req = answering.req;
      // The parser fails again on each later read of the connection, while the handler's 400 may be on its way.
      if (malformed.has(req)) return;
      // Malformed bytes in the body of the request being answered (nothing behind it is read before its body is
      // complete), whose answer has not started: that answer is this 400, sent by the handler on a connection that
      // then closes (what follows on it cannot be parsed).
      if (socket.writable && !answering.headersSent && !req.complete) {
        malformed.set(req, err);
        answering.shouldKeepAlive = false;
        // A reader already waiting is told now; one that starts later finds it (body.ts).
        if (req.listenerCount('error') > 0) req.emit('error', err);
        return;
      }
    }
    // Bytes of an answer to an earlier request on this connection are out (a malformed request pipelined behind a
    // streaming one): an error written now would land in the middle of that answer, so the connection just closes,
    // as node:http's own handler does.
    // So does one whose answer is still to come (its model server is working): an error written now would be read
    // as the answer to that request.
    if (!socket.writable || answering) return socket.destroy();
    rawAnswer(socket, clientFault(err), faultFormat?.(), onRefused);
  });
  // Without a listener Node answers an Expect other than 100-continue with a bare 417 and drops CONNECT without a
  // word. Expect is a hint a server may ignore (RFC 9110 §10.1.1, and it is not forwarded): the request is served.
  server.on('checkExpectation', served);
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (maxBodyBytes && Number(req.headers['content-length']) > maxBodyBytes()) withheld.add(req);
    else res.writeContinue();
    served(req, res);
  });
  server.on('connect', (req, socket: Duplex) => {
    // Node hands the socket over without its error listener: a reset from the client must not become an uncaught error.
    socket.on('error', () => socket.destroy());
    rawAnswer(socket, gatewayError('TG_ERR_METHOD_NOT_ALLOWED', `${req.method} is not supported`, { allow: methods }), faultFormat?.(), onRefused);
  });
  return server;
}

/**
 * node:http knows a TLS connection only once its handshake is done: closeAllConnections() missed one still in it, which
 * kept a shutting-down process alive until the handshake timed out.
 */
class HttpsListener extends HttpsServer {
  readonly #sockets = new Set<Socket>();

  constructor(options: HttpsServerOptions, handler: RequestListener) {
    super(options, handler);
    this.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  override closeAllConnections(): void {
    super.closeAllConnections();
    for (const socket of this.#sockets) socket.destroy();
  }
}

function httpsServer(options: HttpsServerOptions, tls: TlsFiles, handler: RequestListener): Server {
  const cert = readTlsFile('cert', tls.cert);
  const key = readTlsFile('key', tls.key);
  try {
    return new HttpsListener({ ...options, cert, key }, handler) as unknown as Server;
  } catch (err) {
    throw unusablePair(err);
  }
}

/** The gateway's listeners, as a failure to open one names them. */
export type ListenerName = 'data plane' | 'admin' | 'ext_proc';

/** What the usual reasons a listener cannot open mean to whoever chose its port. */
const LISTEN_FAILURES: Record<string, string> = {
  EADDRINUSE: 'the address is already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'the address is not one of this machine\'s',
};

/** Why a listener could not open, in words for whoever chose its port: `the address is already in use`. */
export function listenFailureReason(cause: NodeJS.ErrnoException): string {
  return LISTEN_FAILURES[cause.code ?? ''] ?? cause.message;
}

/** A listener that could not open its address (taken, not permitted, not on this machine): which one, where, why. */
export class ListenError extends Error {
  readonly listener: ListenerName;
  readonly host: string;
  readonly port: number;
  readonly code: string | undefined;
  readonly reason: string;

  constructor(listener: ListenerName, host: string, port: number, cause: NodeJS.ErrnoException) {
    const reason = listenFailureReason(cause);
    super(`the ${listener} listener cannot open ${host}:${port}: ${reason}`, { cause });
    this.listener = listener;
    this.host = host;
    this.port = port;
    this.code = cause.code;
    this.reason = reason;
  }
}

/** Runs `open` (a listener's listen, resolving with its port); its failure becomes a ListenError naming the listener. */
export async function openListener(listener: ListenerName, host: string, port: number, open: () => Promise<number>): Promise<number> {
  try {
    return await open();
  } catch (err) {
    throw new ListenError(listener, host, port, err as NodeJS.ErrnoException);
  }
}

/**
 * Fails as `listener` would fail to open `host:port` (a ListenError), without keeping it: a start that opens the
 * listener only later (once the store has loaded) refuses a port taken at once rather than after the load. Port 0
 * (any free port) cannot be taken.
 */
export async function checkPort(listener: ListenerName, host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = createNetServer();
  await openListener(listener, host, port, () => listen(probe, port, host));
  await new Promise((resolve) => probe.close(resolve));
}

export function listen(server: NetServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
}
