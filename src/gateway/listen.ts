// Opening an HTTP or HTTPS listener with tollgate's timeouts against slow clients.
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { GatewaySettings } from '../config/settings.js';

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
 * Reloaded settings on a live listener. Node reads these properties when it checks its connections and when a
 * response ends, so connections already open follow them too; nothing is dropped.
 */
export function applyListenerTimeouts(server: Server, settings: GatewaySettings['server']): void {
  Object.assign(server, listenerTimeouts(settings));
}

export function createListener(handler: RequestListener, settings: GatewaySettings['server'], tls?: TlsFiles): Server {
  const options = listenerTimeouts(settings);
  const server: Server = tls
    ? (createHttpsServer({ ...options, cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, handler) as unknown as Server)
    : createHttpServer(options, handler);
  server.on('clientError', (err, socket) => {
    if (!socket.writable) return socket.destroy();
    const code = (err as { code?: string }).code;
    const status = code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const body = JSON.stringify({ error: { message: err.message, type: 'invalid_request_error', code: status === 408 ? 'request_timeout' : 'invalid_request' } });
    socket.end(`HTTP/1.1 ${status} ${status === 408 ? 'Request Timeout' : 'Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  return server;
}

export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as { port: number }).port);
    });
  });
}
