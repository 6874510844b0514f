// One simulated vLLM-compatible model server: OpenAI endpoints, /metrics, /health, and fault controls for tests.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { embed, toBase64 } from './embeddings.js';
import { Engine, type Sequence } from './engine.js';
import { Faults, type FaultOptions } from './faults.js';
import { hashString } from './hash.js';
import { HttpError, invalidRequest, readJson, sendError, sendJson } from './http-io.js';
import { embeddingJob, generationJob, responseNotFound, type Catalog, type GenerationEndpoint, type GenerationJob } from './jobs.js';
import { createSimMetrics, type SimMetrics } from './metrics.js';
import { SIM_DEFAULTS, simOptionsProblem, type SimServerOptions } from './options.js';
import { loadTokenizer } from '../lib/tokenizer.js';
import { SimResponseStore } from './response-store.js';

/** A snapshot of a server's internals, for tests. */
export interface SimServerState {
  waiting: number;
  running: number;
  kvUsage: number;
  kvUsedBlocks: number;
  kvTotalBlocks: number;
  cachedBlocks: number;
  residentLoras: string[];
  loadingLoras: string[];
  /** Inference requests received (since start or the last revive). */
  requests: number;
  dead: boolean;
}

type Route = GenerationEndpoint | 'embeddings';

const ROUTES: Record<string, Route> = {
  '/v1/chat/completions': 'chat',
  '/v1/completions': 'completions',
  '/v1/responses': 'responses',
  '/v1/embeddings': 'embeddings',
};

const STORED_RESPONSE = /^\/v1\/responses\/([^/]+)(\/cancel|\/input_items)?$/;

const GET_PATHS = new Set(['/health', '/metrics', '/v1/models']);

const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' };

export class SimServer {
  readonly port: number;
  readonly url: string;
  /** The base model (first served name). */
  readonly model: string;
  readonly engine: Engine;
  readonly faults: Faults;
  readonly metrics: SimMetrics;
  #catalog: Catalog;
  #timeScale: number;
  #http: Server;
  #sockets = new Set<Socket>();
  /** Aborted by close(): a request waiting out a latency spike kept the process alive for the rest of the spike. */
  #closing = new AbortController();
  #created = Math.floor(Date.now() / 1000);
  /** Responses API answers this server stores (vLLM keeps them in memory, per server). */
  readonly responses = new SimResponseStore();

  private constructor(http: Server, port: number, host: string, catalog: Catalog, engine: Engine, faults: Faults, timeScale: number) {
    this.#http = http;
    this.port = port;
    this.url = `http://${host}:${port}`;
    this.#catalog = catalog;
    this.model = catalog.models[0];
    this.engine = engine;
    this.faults = faults;
    this.#timeScale = timeScale;
    this.metrics = createSimMetrics(this.model, engine, catalog.loras);
    http.on('request', this.#onRequest);
    http.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  static async start(opts: SimServerOptions = {}): Promise<SimServer> {
    const o = { ...SIM_DEFAULTS, ...definedOnly(opts) };
    const models = typeof o.model === 'string' ? [o.model] : [...o.model];
    if (models.length === 0) throw new Error('a simulated server needs at least one model name');
    const problem = simOptionsProblem(o);
    if (problem !== undefined) throw new Error(problem);
    const engine = new Engine({
      maxNumSeqs: o.maxNumSeqs,
      maxQueue: o.maxQueue,
      maxBatchedTokens: o.maxBatchedTokens,
      kvBlocks: o.kvBlocks,
      maxLoras: o.maxLoras,
      loraLoadMs: o.loraLoadMs,
      timeScale: o.timeScale,
    });
    const catalog: Catalog = {
      models,
      loras: o.loras ?? [],
      maxModelLen: o.maxModelLen,
      maxOutputTokens: o.maxOutputTokens,
      seed: o.seed,
    };
    const faults = new Faults(
      {
        errorRate: o.errorRate ?? 0,
        latencySpikeRate: o.latencySpikeRate ?? 0,
        latencySpikeMs: o.latencySpikeMs ?? 1000,
        dieAfter: o.dieAfter,
        dieMidStream: o.dieMidStream,
      },
      hashString(`faults:${o.replica ?? 0}`, o.seed),
    );
    const http = createServer({ keepAliveTimeout: 60_000 });
    try {
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(o.port ?? 0, o.host, () => {
          http.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      engine.close();
      throw err;
    }
    const { port } = http.address() as { port: number };
    return new SimServer(http, port, o.host, catalog, engine, faults, o.timeScale);
  }

  state(): SimServerState {
    const { engine } = this;
    return {
      waiting: engine.waitingCount,
      running: engine.runningCount,
      kvUsage: engine.kv.usage,
      kvUsedBlocks: engine.kv.usedBlocks,
      kvTotalBlocks: engine.kv.totalBlocks,
      cachedBlocks: engine.kv.cachedBlocks,
      residentLoras: engine.loras.resident,
      loadingLoras: engine.loras.loading,
      requests: this.faults.requests,
      dead: this.faults.dead !== null,
    };
  }

  /**
   * The server dies now. Without midStreamChunks (and no dieMidStream option) every open connection is destroyed and
   * new ones are dropped on arrival; with it, requests are still taken but streams are cut after that many chunks.
   */
  kill(opts: { midStreamChunks?: number } = {}): void {
    const mode = this.faults.deathMode(opts.midStreamChunks);
    this.faults.dead = mode;
    if (mode === 'refuse') for (const socket of this.#sockets) socket.destroy();
  }

  /** Back to normal after kill() or dieAfter; the dieAfter count starts again. */
  revive(): void {
    this.faults.revive();
  }

  /** The next `count` inference requests are answered with `status` (e.g. 503, or 429 with retry-after). */
  failNext(count: number, status = 503): void {
    this.faults.failNext(count, status);
  }

  /** Changes fault-injection rates while running. */
  setFaults(changes: Partial<FaultOptions>): void {
    Object.assign(this.faults.opts, changes);
  }

  async close(): Promise<void> {
    this.#closing.abort();
    this.engine.close();
    await new Promise<void>((resolve) => {
      this.#http.close(() => resolve());
      for (const socket of this.#sockets) socket.destroy();
    });
  }

  // Whatever goes wrong answering one request fails that request alone: a throw out of a request listener ends the
  // process, every replica of a fleet with it.
  #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    try {
      this.#route(req, res);
    } catch (err) {
      failAnswer(res, err);
    }
  };

  #route(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?', 1)[0];
    const route = ROUTES[path];
    if (this.faults.dead === 'refuse' || (this.faults.dead !== null && route === undefined)) {
      req.socket.destroy();
      return;
    }
    const stored = STORED_RESPONSE.exec(path);
    // Path parameters are percent-decoded, as FastAPI (vLLM's server) decodes them.
    if (stored) return this.#storedResponse(req.method ?? 'GET', decodedSegment(stored[1]), stored[2], res);
    if (route !== undefined) {
      if (req.method !== 'POST') return sendError(res, methodNotAllowed());
      this.#inference(route, req, res).catch((err: unknown) => failAnswer(res, err));
      return;
    }
    // As vLLM (FastAPI): a path it does not serve is a 404 whatever the method, a known one is a 405 for another method.
    if (!GET_PATHS.has(path)) return sendError(res, new HttpError(404, `No route for ${req.method} ${path}`));
    if (req.method !== 'GET') return sendError(res, methodNotAllowed());
    if (path === '/health') {
      res.writeHead(200, { 'content-length': 0 });
      res.end();
    } else if (path === '/metrics') {
      this.metrics.page().then(
        (text) => {
          res.writeHead(200, { 'content-type': this.metrics.contentType });
          res.end(text);
        },
        () => sendError(res, new HttpError(500, 'metrics failed')),
      );
    } else {
      sendJson(res, 200, this.#modelList());
    }
  }

  /** GET, DELETE, input_items and cancel of a stored response, as vLLM answers them. */
  #storedResponse(method: string, id: string, sub: string | undefined, res: ServerResponse): void {
    const answer = this.responses.get(id);
    const allowed = sub === '/cancel' ? method === 'POST' : sub === '/input_items' ? method === 'GET' : method === 'GET' || method === 'DELETE';
    if (!allowed) return sendError(res, methodNotAllowed());
    if (!answer) return sendError(res, responseNotFound(id));
    if (sub === '/cancel') return sendError(res, invalidRequest('Cannot cancel a synchronous response.'));
    if (sub === '/input_items') {
      const data = answer.inputItems;
      return sendJson(res, 200, JSON.stringify({ object: 'list', data, first_id: null, last_id: null, has_more: false }));
    }
    if (method === 'DELETE') {
      this.responses.delete(id);
      return sendJson(res, 200, JSON.stringify({ id, object: 'response', deleted: true }));
    }
    sendJson(res, 200, JSON.stringify(answer.response));
  }

  async #inference(route: Route, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrived = performance.now();
    const body = await readJson(req);
    const job = route === 'embeddings' ? embeddingJob(body, this.#catalog) : generationJob(route, body, this.#catalog, this.responses);
    const readMs = performance.now() - arrived;
    const verdict = this.faults.next();
    let spikeMs = 0;
    if (verdict.kind === 'die') {
      this.kill();
      if (this.faults.dead === 'refuse') return;
    } else if (verdict.kind === 'fail') {
      return sendError(res, injectedError(verdict.status));
    } else if (verdict.delayMs > 0) {
      spikeMs = verdict.delayMs;
      try {
        await sleep(spikeMs / this.#timeScale, undefined, { signal: this.#closing.signal });
      } catch {
        // Closed: its connection is destroyed with the others.
        return;
      }
      if (res.destroyed) return;
    }
    // The arrival on the engine's timeline, from which the latency histograms count: reading and tokenizing take the
    // real time they took, a spike the simulated time it stands for, and the engine's steps their scheduled ends, so
    // neither that real work nor late timers are multiplied by the time scale.
    const origin = performance.now() - (readMs + spikeMs) / this.#timeScale;

    let seqs: Sequence[] | null;
    if ('texts' in job) {
      const seq = this.engine.submit({
        lora: job.lora,
        promptTokens: Math.max(1, Math.min(job.promptTokens, this.#catalog.maxModelLen)),
        blockHashes: [],
        outputTokens: 0,
        onToken: () => {},
        onFinish: guarded(res, (at: number) => {
          if (this.#cutLimit() !== Infinity) return void res.destroy();
          const data = job.texts.map((text, index) => {
            const vector = embed(text, job.dimensions);
            return { object: 'embedding', index, embedding: job.base64 ? toBase64(vector) : vector };
          });
          const usage = { prompt_tokens: job.promptTokens, total_tokens: job.promptTokens };
          sendJson(res, 200, JSON.stringify({ object: 'list', data, model: job.model, usage }));
          this.#recordFinish(origin, at, 'stop');
        }),
      });
      seqs = seq && [seq];
    } else {
      seqs = this.#generate(job, res, origin);
    }
    if (seqs === null) return sendError(res, queueFull());
    const submitted = seqs;
    res.once('close', () => {
      for (const seq of submitted) if (seq.state !== 'done') this.engine.cancel(seq);
    });
  }

  /** Submits a generation, a sequence per choice; each decode step's piece goes out as a chunk when streaming. */
  #generate(job: GenerationJob, res: ServerResponse, origin: number): Sequence[] | null {
    let chunks = 0;
    let corked = false;
    const uncork = () => {
      corked = false;
      res.uncork();
    };
    // Returns false when the server is dying and cut this stream instead.
    const write = (data: string): boolean => {
      if (chunks >= this.#cutLimit()) {
        cut(res);
        return false;
      }
      chunks++;
      // Tokens of several catch-up steps in one tick leave in one packet instead of one syscall each.
      if (!corked) {
        corked = true;
        res.cork();
        process.nextTick(uncork);
      }
      res.write(data);
      return true;
    };
    let firstToken = true;
    let running = job.choiceTokens.length;
    const seqs = this.engine.submitAll(
      job.choiceTokens.map((outputTokens, choice) => ({
        lora: job.lora,
        promptTokens: job.prompt.count,
        blockHashes: job.blockHashes,
        outputTokens,
        onToken: guarded(res, (index: number, at: number) => {
          if (firstToken) {
            firstToken = false;
            this.metrics.firstToken(this.#simulatedSeconds(origin, at));
          }
          if (job.stream) write(job.format.step(choice, index));
        }),
        onFinish: guarded(res, (at: number) => {
          if (--running === 0) finish(at);
        }),
      })),
    );
    // The answer is complete when its last choice is.
    const finish = (at: number) => {
      const usage = { promptTokens: job.prompt.count, completionTokens: job.completionTokens, cachedTokens: seqs![0].cachedTokens };
      if (job.stream) {
        if (!write(job.format.close(usage))) return;
        res.end();
      } else {
        if (this.#cutLimit() !== Infinity) return cut(res);
        sendJson(res, 200, job.format.body(usage));
      }
      // The engine's reason: a tool call ended at end of sequence.
      this.#recordFinish(origin, at, job.finishReason === 'tool_calls' ? 'stop' : job.finishReason);
    };
    if (seqs !== null && job.stream) {
      res.writeHead(200, SSE_HEADERS);
      const opening = job.format.open();
      if (opening !== '') write(opening);
      else res.flushHeaders();
    }
    return seqs;
  }

  #recordFinish(origin: number, at: number, finishReason: 'stop' | 'length'): void {
    this.metrics.finished({ finishReason, seconds: this.#simulatedSeconds(origin, at) });
  }

  /** Simulated seconds from `origin` to `at`, both on the engine's clock (performance.now()), as the histograms record them. */
  #simulatedSeconds(origin: number, at: number): number {
    return ((at - origin) / 1000) * this.#timeScale;
  }

  /** Chunks a response may still send: unlimited unless the server died in mid-stream mode. */
  #cutLimit(): number {
    const dead = this.faults.dead;
    return dead !== null && dead !== 'refuse' ? dead.cutAfterChunks : Infinity;
  }

  #modelList(): string {
    const card = (id: string, root: string, parent: string | null) => ({
      id,
      object: 'model',
      created: this.#created,
      owned_by: 'vllm',
      root,
      parent,
      max_model_len: this.#catalog.maxModelLen,
      permission: [],
    });
    const data = [
      ...this.#catalog.models.map((m) => card(m, this.model, null)),
      ...this.#catalog.loras.map((l) => card(l, `/adapters/${l}`, this.model)),
    ];
    return JSON.stringify({ object: 'list', data });
  }
}

/** Starts one simulated server on 127.0.0.1 (port 0 = any free port). */
export function startSimServer(opts: SimServerOptions = {}): Promise<SimServer> {
  // Every request is tokenized: the tables load now rather than in the first request's time to first token.
  loadTokenizer();
  return SimServer.start(opts);
}

/** Ends a response abruptly after what was already written has been flushed, as a crashing server would. */
function cut(res: ServerResponse): void {
  res.uncork();
  const socket = res.socket;
  if (socket) socket.destroySoon();
  else res.destroy();
}

/**
 * An answer that failed after it was accepted (a throw in an engine callback or a request listener): a 500 when
 * nothing was sent yet, otherwise the connection is cut; either way its sequences are cancelled when the response closes.
 */
function failAnswer(res: ServerResponse, err: unknown): void {
  if (res.headersSent) return void res.destroy();
  sendError(res, err instanceof HttpError ? err : new HttpError(500, String(err)));
}

/** An engine callback that cannot throw: the engine's step timer would end the process. */
function guarded<A extends unknown[]>(res: ServerResponse, fn: (...args: A) => void): (...args: A) => void {
  return (...args) => {
    try {
      fn(...args);
    } catch (err) {
      failAnswer(res, err);
    }
  };
}

function injectedError(status: number): HttpError {
  if (status === 429) return new HttpError(429, 'Injected fault: too many requests', { headers: { 'retry-after': '1' } });
  if (status === 503) return new HttpError(503, 'Injected fault: service unavailable');
  return new HttpError(status, 'Injected fault: internal server error');
}

function queueFull(): HttpError {
  return new HttpError(429, 'The server is overloaded: its waiting queue is full', { headers: { 'retry-after': '1' } });
}

function methodNotAllowed(): HttpError {
  return new HttpError(405, 'Method Not Allowed');
}

function decodedSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
