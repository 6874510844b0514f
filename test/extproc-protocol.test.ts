// ext_proc streams Envoy should never send (malformed, out of order) end with a gRPC error status and leave the server
// serving; streams Envoy abandons (cancelled mid-request, mid-answer) release their pick and are accounted once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, credentials, status, type ServiceError } from '@grpc/grpc-js';
import { loadConfig } from '../src/config/load.js';
import type { RequestContext } from '../src/gateway/context.js';
import type { DataPlane } from '../src/gateway/data-plane.js';
import { gatewayError } from '../src/gateway/errors.js';
import type { GatewayHooks, ResponseFlow } from '../src/gateway/hooks.js';
import { silentLogger } from '../src/lib/logger.js';
import { ExtprocClient, type ExtprocCall } from '../src/extproc/client.js';
import type { ProcessingRequest } from '../src/extproc/messages.js';
import { EXT_PROC_SERVICE, extProcService } from '../src/extproc/protos.js';
import { startExtprocServer, type ExtprocServer } from '../src/extproc/server.js';
import { waitFor } from '../src/sim/testing.js';
import { closeEnvoyClients, ENVOY_ENDS, envoyExchange, headerMap } from './helpers/extproc-envoy.js';
import { poolAndModel, settings } from './helpers/manifests.js';
import { startStub, sleep, type Stub } from './helpers/stub-upstream.js';
import { RoundRobinPicker } from '../src/scheduler/round-robin.js';
import { bareDataPlane, CountingPicker } from './helpers/bare-data-plane.js';

const MAX_BODY = 2048;
let stub: Stub;
let picker: CountingPicker;
let completed: RequestContext[];
let server: ExtprocServer;
let dataPlane: DataPlane;
let partial: ExtprocServer;
let address: string;
let client: ExtprocClient;
/** The response flow the policies would have for an answer (none unless a test sets one). */
let respondWith: GatewayHooks['respond'];

const CHAT = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }] });

function requestHeaders(path = '/v1/chat/completions', end = false): ProcessingRequest {
  return { request_headers: { headers: headerMap([[':method', 'POST'], [':path', path], [':authority', 'gw'], ['content-type', 'application/json']]), end_of_stream: end } };
}

/** A raw bidi call, for the exact status code and for bytes that are not a ProcessingRequest. */
function rawCall(frames: Buffer[]): Promise<ServiceError | null> {
  const c = new Client(address, credentials.createInsecure());
  const call = c.makeBidiStreamRequest(`/${EXT_PROC_SERVICE}/Process`, (b: Buffer) => b, (b: Buffer) => b);
  return new Promise((resolve) => {
    call.on('data', () => {});
    call.on('error', (err: ServiceError) => {
      c.close();
      resolve(err);
    });
    call.on('status', (s) => {
      if (s.code === status.OK) {
        c.close();
        resolve(null);
      }
    });
    for (const f of frames) call.write(f);
    call.end();
  });
}

/** Serialized ProcessingRequest bytes, through the same proto. */
function encode(msg: ProcessingRequest): Buffer {
  return extProcService().Process.requestSerialize(msg);
}

async function stillServes(): Promise<void> {
  const r = await envoyExchange(address, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: CHAT });
  assert.equal(r.status, 200, r.body.toString());
}

before(async () => {
  stub = await startStub();
  const config = loadConfig([], [...poolAndModel([stub.url]), settings({ server: { maxBodyBytes: MAX_BODY } })]);
  picker = new CountingPicker();
  completed = [];
  dataPlane = bareDataPlane(config, picker, { complete: (ctx) => void completed.push(ctx), respond: (ctx, status) => respondWith?.(ctx, status) });
  server = await startExtprocServer({ dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1' });
  partial = await startExtprocServer({ dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1', requestBodyMode: 'BUFFERED_PARTIAL' });
  address = `127.0.0.1:${server.port}`;
  client = new ExtprocClient({ address });
});

after(async () => {
  client.close();
  closeEnvoyClients();
  await server.close(100);
  await partial.close(100);
  await stub.close();
});

describe('malformed and out-of-order messages', () => {
  const cases: { name: string; messages: () => Buffer[]; code: status; details: RegExp }[] = [
    { name: 'a body before the headers', messages: () => [encode({ request_body: { body: Buffer.from(CHAT), end_of_stream: true } })], code: status.FAILED_PRECONDITION, details: /request_body before request_headers/ },
    { name: 'two request_headers', messages: () => [encode(requestHeaders()), encode(requestHeaders())], code: status.FAILED_PRECONDITION, details: /request_headers arrived twice/ },
    { name: 'a response before the request', messages: () => [encode({ response_headers: { headers: headerMap([[':status', '200']]) } })], code: status.FAILED_PRECONDITION, details: /response_headers before request_headers/ },
    { name: 'no oneof member (an unknown one decodes to none)', messages: () => [Buffer.from([0x50, 0x01])], code: status.INVALID_ARGUMENT, details: /no request this server knows/ },
    { name: 'headers without :path', messages: () => [encode({ request_headers: { headers: headerMap([[':method', 'POST']]), end_of_stream: true } })], code: status.INVALID_ARGUMENT, details: /without :method and :path/ },
  ];
  for (const c of cases) {
    test(`${c.name} → gRPC ${status[c.code]}; the server still serves`, async () => {
      const err = await rawCall(c.messages());
      assert.ok(err, 'the stream must fail');
      assert.equal(err.code, c.code, err.details);
      assert.match(err.details, c.details);
      await stillServes();
    });
  }

  test('bytes that are no protobuf → a gRPC error; the server still serves', async () => {
    const err = await rawCall([Buffer.from([0xff, 0xff, 0xff, 0xff])]);
    assert.ok(err && err.code !== status.OK);
    await stillServes();
  });

  test('the pick of a stream failed after its decision is released', async () => {
    const before = picker.inFlight;
    const err = await rawCall([encode(requestHeaders()), encode({ request_body: { body: Buffer.from(CHAT), end_of_stream: true } }), encode(requestHeaders())]);
    assert.equal(err?.code, status.FAILED_PRECONDITION);
    await waitFor(() => picker.inFlight === before, 3000, 'release');
  });
});

describe('processing modes that show tollgate less of the exchange', () => {
  test('request_body_mode NONE: the answer to a request whose body never came is withheld (500), not passed on unjudged', async () => {
    const n = completed.length;
    for (const answerPart of ['response_headers', 'response_body', 'response_trailers'] as const) {
      const call = client.open(10_000);
      await call.send(requestHeaders());
      const part =
        answerPart === 'response_headers'
          ? { response_headers: { headers: headerMap([[':status', '200'], ['content-type', 'application/json']]) } }
          : answerPart === 'response_body'
            ? { response_body: { body: Buffer.from('{"choices":[]}'), end_of_stream: true } }
            : { response_trailers: { trailers: headerMap([]) } };
      const answer = await call.send(part);
      assert.equal(answer.immediate_response?.status.code, 500, `${answerPart}: ${JSON.stringify(answer).slice(0, 200)}`);
      assert.equal(JSON.parse(answer.immediate_response!.body!.toString()).error.code, 'internal_error');
      call.end();
    }
    await waitFor(() => completed.length === n + 3, 3000, 'each accounted');
    assert.deepEqual(completed.slice(n).map((c) => c.status), [500, 500, 500]);
  });

  for (const [kind, contentType, answer] of [
    ['JSON', 'application/json', '{"id":"x","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":12,"total_tokens":17}}'],
    ['SSE', 'text/event-stream', 'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":12,"total_tokens":17}}\n\ndata: [DONE]\n\n'],
  ] as const) {
    test(`response_header_mode SKIP with the body sent (${kind}): the answer's usage is read, the exchange ends normally`, async () => {
      const n = completed.length;
      const call = client.open(10_000);
      await call.send(requestHeaders());
      await call.send({ request_body: { body: Buffer.from(CHAT), end_of_stream: true } });
      const r = await call.send({ response_body: { body: Buffer.from(answer), end_of_stream: true } });
      assert.equal(r.response, 'response_body', JSON.stringify(r).slice(0, 200));
      call.end();
      await waitFor(() => completed.length === n + 1, 3000, 'finish');
      const ctx = completed.at(-1)!;
      assert.equal(ctx.status, 200);
      assert.equal(ctx.errorCode, undefined);
      assert.equal(ctx.usage?.outputTokens, 12, `${contentType}: the usage of the answer`);
    });
  }

  test('a request with trailers: BUFFERED (told) judges the body Envoy sends without end_of_stream; otherwise it is refused, not sent on empty', async () => {
    const buffered = await startExtprocServer({ dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1', requestBodyMode: 'BUFFERED' });
    const c = new ExtprocClient({ address: `127.0.0.1:${buffered.port}` });
    try {
      const call = c.open(10_000);
      await call.send(requestHeaders());
      const decided = await call.send({ request_body: { body: Buffer.from(CHAT), end_of_stream: false } });
      assert.ok(decided.request_body?.response?.header_mutation?.set_headers?.some((h) => h.header.key === 'x-gateway-destination-endpoint'), JSON.stringify(decided).slice(0, 300));
      assert.equal(decided.request_body?.response?.body_mutation?.clear_body, undefined, 'the body stays');
      assert.equal((await call.send({ request_trailers: { trailers: headerMap([]) } })).response, 'request_trailers');
      call.end();
    } finally {
      c.close();
      await buffered.close(100);
    }
    const call = client.open(10_000);
    await call.send(requestHeaders());
    assert.equal((await call.send({ request_body: { body: Buffer.from(CHAT), end_of_stream: false } })).request_body?.response?.body_mutation?.clear_body, true);
    const refused = await call.send({ request_trailers: { trailers: headerMap([]) } });
    assert.equal(refused.immediate_response?.status.code, 400, JSON.stringify(refused).slice(0, 300));
    call.end();
  });

  test('response headers and body skipped, trailers sent: the trailers end the exchange', async () => {
    const n = completed.length;
    const call = client.open(10_000);
    await call.send(requestHeaders());
    await call.send({ request_body: { body: Buffer.from(CHAT), end_of_stream: true } });
    const r = await call.send({ response_trailers: { trailers: headerMap([]) } });
    assert.equal(r.response, 'response_trailers');
    call.end();
    await waitFor(() => completed.length === n + 1 && picker.inFlight === 0, 3000, 'finish and release');
    assert.equal(completed.at(-1)!.errorCode, undefined);
  });
});

/** A reset alone, and the ways Envoy ends a stream. */
const ENDS: [how: string, end: (call: ExtprocCall) => void][] = [['a reset', (call) => call.cancel()], ...ENVOY_ENDS];

describe('streams Envoy abandons', () => {
  for (const [how, end] of ENDS) {
    test(`ended with ${how} after the decision (upstream in progress): the pick is released, the request accounted once`, async () => {
      const n = completed.length;
      const call: ExtprocCall = client.open(10_000);
      await call.send(requestHeaders());
      const decided = await call.send({ request_body: { body: Buffer.from(CHAT), end_of_stream: true } });
      assert.ok(decided.request_body?.response?.header_mutation);
      assert.equal(picker.inFlight, 1);
      end(call);
      await waitFor(() => picker.inFlight === 0 && completed.length === n + 1, 3000, 'release and finish');
      const ctx = completed.at(-1)!;
      // Untold Envoy's response body mode, the end Envoy gives every stream: the answer went on unseen
      // (extproc-unseen-answer.test.ts).
      assert.equal(ctx.answerUnseen, true);
      assert.equal(ctx.errorCode, undefined);
      assert.equal(ctx.attempts, 1, 'forwarded: a token reservation is kept, as the data plane keeps it');
      await sleep(50);
      assert.equal(completed.length, n + 1, 'finished exactly once');
    });

    test(`ended with ${how} mid-answer (an SSE stream half sent): a hang-up, released with the status seen, accounted once`, async () => {
      const n = completed.length;
      const call = client.open(10_000);
      await call.send(requestHeaders());
      await call.send({ request_body: { body: Buffer.from(CHAT), end_of_stream: true } });
      await call.send({ response_headers: { headers: headerMap([[':status', '200'], ['content-type', 'text/event-stream']]) } });
      await call.send({ response_body: { body: Buffer.from('data: {"choices":[{"delta":{"content":"he'), end_of_stream: false } });
      end(call);
      await waitFor(() => picker.inFlight === 0 && completed.length === n + 1, 3000, 'release and finish');
      assert.equal(picker.releases.at(-1)?.status, 200);
      assert.equal(completed.at(-1)!.errorCode, 'client_closed');
    });
  }

  test('cancelled while the body streams in: no pick was made, the request is accounted once', async () => {
    const n = completed.length;
    const call = client.open(10_000);
    await call.send(requestHeaders());
    await call.send({ request_body: { body: Buffer.from(CHAT.slice(0, 10)), end_of_stream: false } });
    call.cancel();
    await waitFor(() => completed.length === n + 1, 3000, 'finish');
    assert.equal(picker.inFlight, 0);
  });

  for (const [how, end] of ENVOY_ENDS) {
    test(`ended with ${how} after the answer headers (response body mode NONE): a normal end, released as served`, async () => {
      const n = completed.length;
      const call = client.open(10_000);
      await call.send(requestHeaders());
      await call.send({ request_body: { body: Buffer.from(CHAT), end_of_stream: true } });
      await call.send({ response_headers: { headers: headerMap([[':status', '200'], ['content-type', 'application/json']]) } });
      end(call);
      await waitFor(() => picker.inFlight === 0 && completed.length === n + 1, 3000, 'release and finish');
      assert.equal(completed.at(-1)!.errorCode, undefined);
      assert.equal(completed.at(-1)!.status, 200);
      assert.equal(picker.releases.at(-1)?.status, 200);
    });
  }
});

describe('request body limits', () => {
  test('a streamed body over the limit → 413 as soon as it is over, chunks after it pass unexamined', async () => {
    const call = client.open(10_000);
    await call.send(requestHeaders());
    const first = await call.send({ request_body: { body: Buffer.alloc(MAX_BODY - 10, 0x20), end_of_stream: false } });
    assert.equal(first.request_body?.response?.body_mutation?.clear_body, true, 'held back until judged');
    const over = await call.send({ request_body: { body: Buffer.alloc(20, 0x20), end_of_stream: false } });
    assert.equal(over.immediate_response?.status.code, 413);
    assert.equal(JSON.parse(over.immediate_response!.body!.toString()).error.code, 'body_too_large');
    const rest = await call.send({ request_body: { body: Buffer.alloc(20, 0x20), end_of_stream: true } });
    assert.equal(rest.response, 'request_body');
    call.end();
  });

  test("a buffered body over gRPC's 4 MiB default is judged under a 10 MiB limit, and one over the limit gets its 413", async () => {
    const config = loadConfig([], poolAndModel([stub.url]));
    const dataPlane = bareDataPlane(config, new RoundRobinPicker());
    const roomy = await startExtprocServer({ dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1' });
    const c = new ExtprocClient({ address: `127.0.0.1:${roomy.port}` });
    try {
      const send = async (bytes: number) => {
        const call = c.open(30_000);
        await call.send(requestHeaders());
        const answer = await call.send({ request_body: { body: Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(bytes) }] })), end_of_stream: true } });
        call.end();
        return answer;
      };
      const judged = await send(5 * 1024 * 1024);
      assert.equal(judged.response, 'request_body', JSON.stringify(judged).slice(0, 300));
      const over = await send(12 * 1024 * 1024);
      assert.equal(over.immediate_response?.status.code, 413);
      assert.equal(JSON.parse(over.immediate_response!.body!.toString()).error.code, 'body_too_large');
    } finally {
      c.close();
      await roomy.close(100);
    }
  });

  test('BUFFERED_PARTIAL: a body cut at the buffer limit (no end_of_stream) → 413', async () => {
    const c = new ExtprocClient({ address: `127.0.0.1:${partial.port}` });
    const call = c.open(10_000);
    await call.send(requestHeaders());
    const cut = await call.send({ request_body: { body: Buffer.from(CHAT.slice(0, 20)), end_of_stream: false } });
    assert.equal(cut.immediate_response?.status.code, 413);
    call.end();
    c.close();
  });

  test('BUFFERED_PARTIAL: a whole body Envoy sends without end_of_stream because trailers follow is judged, not refused', async () => {
    const c = new ExtprocClient({ address: `127.0.0.1:${partial.port}` });
    const n = completed.length;
    try {
      const call = c.open(10_000);
      await call.send(requestHeaders());
      const decided = await call.send({ request_body: { body: Buffer.from(CHAT), end_of_stream: false } });
      assert.ok(decided.request_body?.response?.header_mutation?.set_headers?.some((h) => h.header.key === 'x-gateway-destination-endpoint'), JSON.stringify(decided).slice(0, 300));
      assert.equal((await call.send({ request_trailers: { trailers: headerMap([]) } })).response, 'request_trailers');
      call.end();
      await waitFor(() => completed.length === n + 1 && picker.inFlight === 0, 3000, 'finish and release');
    } finally {
      c.close();
    }
  });

  test('a buffered body over the limit → 413, the same answer the data plane gives', async () => {
    const r = await envoyExchange(address, { path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', prompt: 'x'.repeat(MAX_BODY) }) });
    assert.equal(r.status, 413);
    assert.ok(r.local);
    assert.equal(JSON.parse(r.body.toString()).error.code, 'body_too_large');
  });
});

describe("answers tollgate refuses itself (the model server's answer came)", () => {
  const JSON_ANSWER = '{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":5,"completion_tokens":12,"total_tokens":17}}';
  const cases: { name: string; upstream: number; headers: [string, string][]; flow: ResponseFlow; refused: number }[] = [
    {
      name: 'a response policy fails on a 200',
      upstream: 200,
      headers: [['content-type', 'application/json']],
      flow: {
        headers() {
          throw new Error('policy says no');
        },
      },
      refused: 500,
    },
    { name: 'a compressed 200 a body policy cannot read', upstream: 200, headers: [['content-type', 'application/json'], ['content-encoding', 'gzip']], flow: { body: (b) => b }, refused: 502 },
    {
      name: 'a 503 a response policy refuses with a 400',
      upstream: 503,
      headers: [['content-type', 'application/json']],
      flow: {
        headers() {
          throw gatewayError('TG_ERR_INVALID_REQUEST', 'policy says no');
        },
      },
      refused: 400,
    },
  ];
  for (const c of cases) {
    test(`${c.name}: answered ${c.refused}, the pick released with the model server's ${c.upstream}`, async () => {
      respondWith = () => c.flow;
      try {
        const n = completed.length;
        const call = client.open(10_000);
        await call.send(requestHeaders());
        await call.send({ request_body: { body: Buffer.from(CHAT), end_of_stream: true } });
        const r = await call.send({ response_headers: { headers: headerMap([[':status', String(c.upstream)], ...c.headers]) } });
        assert.equal(r.immediate_response?.status.code, c.refused, JSON.stringify(r).slice(0, 300));
        call.end();
        await waitFor(() => picker.inFlight === 0 && completed.length === n + 1, 3000, 'release and finish');
        assert.equal(picker.releases.at(-1)?.status, c.upstream, 'the endpoint is judged by its own answer');
        assert.equal(completed.at(-1)!.status, c.refused, 'the client got the refusal');
      } finally {
        respondWith = undefined;
      }
    });
  }

  test('an answer with trailers held whole for a response policy: BUFFERED (told) rewrites the body Envoy sends without end_of_stream; otherwise it is refused, not sent on empty', async () => {
    respondWith = () => ({ body: (b) => Buffer.from(b.toString().replace('"hi"', '"HI"')) });
    const buffered = await startExtprocServer({ dataPlane, logger: silentLogger }, { port: 0, host: '127.0.0.1', responseBodyMode: 'BUFFERED' });
    const c = new ExtprocClient({ address: `127.0.0.1:${buffered.port}` });
    try {
      const n = completed.length;
      const call = c.open(10_000);
      await call.send(requestHeaders());
      await call.send({ request_body: { body: Buffer.from(CHAT), end_of_stream: true } });
      await call.send({ response_headers: { headers: headerMap([[':status', '200'], ['content-type', 'application/json']]) } });
      const rewritten = await call.send({ response_body: { body: Buffer.from(JSON_ANSWER), end_of_stream: false } });
      assert.match(rewritten.response_body?.response?.body_mutation?.body?.toString() ?? '', /"HI"/, JSON.stringify(rewritten).slice(0, 300));
      assert.equal((await call.send({ response_trailers: { trailers: headerMap([['grpc-status', '0']]) } })).response, 'response_trailers');
      call.end();
      await waitFor(() => completed.length === n + 1 && picker.inFlight === 0, 3000, 'finish');
      assert.equal(completed.at(-1)!.errorCode, undefined);
      assert.equal(completed.at(-1)!.usage?.outputTokens, 12);

      const untold = client.open(10_000);
      await untold.send(requestHeaders());
      await untold.send({ request_body: { body: Buffer.from(CHAT), end_of_stream: true } });
      await untold.send({ response_headers: { headers: headerMap([[':status', '200'], ['content-type', 'application/json']]) } });
      assert.equal((await untold.send({ response_body: { body: Buffer.from(JSON_ANSWER), end_of_stream: false } })).response_body?.response?.body_mutation?.clear_body, true, 'held back until whole');
      const refused = await untold.send({ response_trailers: { trailers: headerMap([['grpc-status', '0']]) } });
      assert.equal(refused.immediate_response?.status.code, 502, JSON.stringify(refused).slice(0, 300));
      untold.end();
      await waitFor(() => completed.length === n + 2 && picker.inFlight === 0, 3000, 'finish');
    } finally {
      respondWith = undefined;
      c.close();
      await buffered.close(100);
    }
  });
});
