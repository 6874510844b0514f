// A scriptable model-server stand-in for gateway tests: each request is answered by the test's handler.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface StubRequest {
  req: IncomingMessage;
  res: ServerResponse;
  body: any;
  raw: string;
}

export interface Stub {
  url: string;
  port: number;
  requests: StubRequest[];
  handler: (r: StubRequest) => void | Promise<void>;
  /** The Prometheus text its /metrics answers (an idle server by default); tests set it to look loaded or saturated. */
  metrics: string;
  close(): Promise<void>;
}

export const IDLE_METRICS = `vllm:num_requests_waiting{model_name="m"} 0
vllm:num_requests_running{model_name="m"} 0
vllm:kv_cache_usage_perc{model_name="m"} 0
`;

/** vLLM metrics of a server with `waiting` requests queued (above 5, the default saturation threshold, it is saturated). */
export function queuedMetrics(waiting: number): string {
  return IDLE_METRICS.replace('num_requests_waiting{model_name="m"} 0', `num_requests_waiting{model_name="m"} ${waiting}`);
}

/** Starts a stub whose default handler echoes the body it received, with usage; on `port` when given, else any free one. */
export async function startStub(handler?: Stub['handler'], port = 0): Promise<Stub> {
  const stub = {
    requests: [] as StubRequest[],
    metrics: IDLE_METRICS,
    handler: handler ?? ((r: StubRequest) => json(r.res, 200, { echo: r.body, usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 } })),
  } as Stub;
  const server: Server = createServer((req, res) => {
    if (req.url === '/metrics') {
      // An idle model server unless the test says otherwise, so the endpoint picker sees the stub as healthy.
      res.end(stub.metrics);
      return;
    }
    if (req.url === '/v1/models' && req.method === 'GET') {
      // The endpoint picker's look for a context length (none said here): not one of the requests a test counts.
      res.setHeader('content-type', 'application/json');
      res.end('{"object":"list","data":[]}');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        body = undefined;
      }
      const r = { req, res, body, raw };
      stub.requests.push(r);
      Promise.resolve(stub.handler(r)).catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  stub.port = (server.address() as { port: number }).port;
  stub.url = `http://127.0.0.1:${stub.port}`;
  stub.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return stub;
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
