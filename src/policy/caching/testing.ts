// Test support for cache policies: tenants, running a policy's admit and response flow by hand, sample answers,
// an embeddings endpoint.
import { createServer } from 'node:http';
import { embed } from '../../sim/embeddings.js';
import type { RequestContext } from '../../gateway/context.js';
import type { KeyRecord, ProductGrant } from '../identity.js';
import type { ApimState, Policy } from '../types.js';

/** The state VerifyAPIKey and entitlement leave for an app on a product. */
export function tenant(appId: string, product = 'gold'): ApimState {
  return { key: { appId, keyId: `key-${appId}` } as KeyRecord, product: { name: product } as ProductGrant };
}

export async function admit(policy: Policy, ctx: RequestContext, state: ApimState): Promise<void> {
  await policy.admit!(ctx, state);
}

/**
 * Runs the policy's response flow over a whole answer (JSON unless `contentType` says otherwise), as the proxy does:
 * headers, then the body. Returns what the client gets.
 */
export async function respondJson(policy: Policy, ctx: RequestContext, state: ApimState, answer: unknown, status = 200, contentType = 'application/json'): Promise<Buffer> {
  const raw = Buffer.from(typeof answer === 'string' ? answer : JSON.stringify(answer));
  const flow = policy.respond?.(ctx, state, status);
  flow?.headers?.(status, { 'content-type': contentType, 'content-length': raw.length });
  const out = flow?.body ? await flow.body(raw, status) : raw;
  flow?.end?.();
  return out;
}

/**
 * Runs the response flow over SSE payloads: one result per payload (null: dropped), the events a payload became
 * (several, when the flow adds some) in its place. `complete: false` leaves the stream abandoned (no end()).
 */
export function respondStream(policy: Policy, ctx: RequestContext, state: ApimState, events: string[], opts: { status?: number; complete?: boolean } = {}): (string | null)[] {
  const flow = policy.respond?.(ctx, state, opts.status ?? 200);
  const out = events.flatMap((e) => (flow?.event ? flow.event(e) : e));
  if (opts.complete !== false) flow?.end?.();
  return out;
}

/** The `data:` payloads of an SSE body. */
export function ssePayloads(body: string | Buffer): string[] {
  return String(body)
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6));
}

export function chatAnswer(content: string, model = 'llama'): Record<string, unknown> {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1700000000,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
  };
}

/** The chunks a server streams for `parts`, then the finish chunk and `[DONE]`. */
export function chatChunks(parts: string[], model = 'llama'): string[] {
  const head = { id: 'chatcmpl-2', object: 'chat.completion.chunk', created: 1700000000, model };
  return [
    JSON.stringify({ ...head, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] }),
    ...parts.map((p) => JSON.stringify({ ...head, choices: [{ index: 0, delta: { content: p }, logprobs: null, finish_reason: null }] })),
    JSON.stringify({ ...head, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] }),
    '[DONE]',
  ];
}

/** The text a client reassembles from chat chunks. */
export function streamedText(payloads: (string | null)[]): string {
  let text = '';
  for (const p of payloads) {
    if (p === null || p === '[DONE]') continue;
    const c = JSON.parse(p) as { choices?: { delta?: { content?: string }; text?: string }[] };
    for (const ch of c.choices ?? []) text += ch.delta?.content ?? ch.text ?? '';
  }
  return text;
}

export interface EmbeddingsStub {
  url: string;
  /** Requests served so far. */
  calls: number;
  /** 'ok' embeds like the simulator; 'fail' answers 500; 'hang' never answers. */
  mode: 'ok' | 'fail' | 'hang';
  close(): Promise<void>;
}

/** An OpenAI-style /v1/embeddings endpoint with the simulator's similarity-preserving embeddings. */
export async function startEmbeddingsStub(): Promise<EmbeddingsStub> {
  const stub: EmbeddingsStub = { url: '', calls: 0, mode: 'ok', close: async () => {} };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      stub.calls++;
      if (stub.mode === 'hang') return;
      if (stub.mode === 'fail') return void res.writeHead(500).end('{"error":{"message":"down"}}');
      const { input } = JSON.parse(Buffer.concat(chunks).toString()) as { input: string };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ index: 0, embedding: embed(input) }] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stub.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1/embeddings`;
  stub.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return stub;
}
