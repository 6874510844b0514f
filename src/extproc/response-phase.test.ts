// The response phase Envoy drives: a compressed answer that usage stripping must change is refused; one nobody
// changes passes, its usage read when it is JSON node:zlib decodes (as the data plane reads it), unread in a stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { GatewayError } from '../gateway/errors.js';
import { fakeContext } from '../policy/testing.js';
import { countChatTokens, countTextTokens } from '../lib/tokenizer.js';
import { ResponsePhase } from './response-phase.js';

const USAGE_EVENT = 'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\n';

test('a compressed stream whose usage must be stripped is refused with 502 upstream_error naming the encoding', () => {
  const ctx = fakeContext();
  ctx.stripStreamUsage = true;
  assert.throws(
    () => new ResponsePhase(ctx, 200, { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' }, false, 1 << 20, undefined),
    (err: unknown) => err instanceof GatewayError && err.status === 502 && err.code === 'upstream_error' && /content-encoding: gzip/.test(err.message),
  );
  // The same stream uncompressed (or in identity) is rewritten: the usage-only event goes.
  for (const headers of [{ 'content-type': 'text/event-stream' }, { 'content-type': 'text/event-stream', 'content-encoding': 'identity' }]) {
    const phase = new ResponsePhase(fakeContext({}), 200, headers, false, 1 << 20, undefined);
    const stripping = fakeContext();
    stripping.stripStreamUsage = true;
    const rewritten = new ResponsePhase(stripping, 200, headers, false, 1 << 20, undefined);
    assert.deepEqual(phase.chunk(Buffer.from(USAGE_EVENT), true), {});
    assert.deepEqual(rewritten.chunk(Buffer.from(USAGE_EVENT), true), { body_mutation: { clear_body: true } });
  }
});

test('a compressed answer nobody changes passes unmutated, and its bytes are not read as usage', () => {
  const ctx = fakeContext();
  const phase = new ResponsePhase(ctx, 200, { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' }, false, 1 << 20, undefined);
  assert.deepEqual(phase.chunk(gzipSync(USAGE_EVENT), true), {});
  phase.end();
  assert.equal(ctx.usage, undefined);
});

test('a compressed JSON answer passes unmutated and its usage is read from a decoded copy, as in the data plane', () => {
  const answer = JSON.stringify({ choices: [], usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 } });
  for (const [encoding, body] of [['gzip', gzipSync(answer)], ['br', brotliCompressSync(answer)]] as const) {
    const ctx = fakeContext();
    const phase = new ResponsePhase(ctx, 200, { 'content-type': 'application/json', 'content-encoding': encoding }, false, 1 << 20, undefined);
    // Split in two, as Envoy may stream it: only the whole decodes.
    assert.deepEqual(phase.chunk(body.subarray(0, 5), false), {});
    assert.deepEqual(phase.chunk(body.subarray(5), true), {});
    assert.equal(ctx.usage?.inputTokens, 11, encoding);
    assert.equal(ctx.usage?.outputTokens, 7, encoding);
  }
  // Larger, compressed, than the body limit: not held, so not read.
  const ctx = fakeContext();
  const phase = new ResponsePhase(ctx, 200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }, false, 8, undefined);
  phase.chunk(gzipSync(answer), true);
  assert.equal(ctx.usage, undefined);
});

test('TTFT is the first data event of a stream (the head alone is not a token), the head when no body comes', async () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const ctx = fakeContext({});
  const phase = new ResponsePhase(ctx, 200, { 'content-type': 'text/event-stream' }, false, 1 << 20, undefined);
  const atHead = ctx.ttftMs!;
  await sleep(30);
  phase.chunk(Buffer.from(': keep-alive comment\n\n'), false);
  assert.equal(ctx.ttftMs, atHead, 'a comment is no token');
  phase.chunk(Buffer.from('data: {"choices":[]}\n\n'), false);
  assert.ok(ctx.ttftMs! >= atHead + 25, `${ctx.ttftMs} after ${atHead}`);
  const bodiless = fakeContext({});
  new ResponsePhase(bodiless, 200, { 'content-type': 'application/json' }, false, 1 << 20, undefined);
  assert.notEqual(bodiless.ttftMs, undefined);
});

test('a streamed request answered 2xx without a content-type is read as the event stream it asked for', () => {
  const stream = () => {
    const ctx = fakeContext({ body: { stream: true } });
    ctx.stream = true;
    ctx.stripStreamUsage = true;
    return ctx;
  };
  const ctx = stream();
  const phase = new ResponsePhase(ctx, 200, {}, false, 1 << 20, undefined);
  assert.deepEqual(phase.chunk(Buffer.from(USAGE_EVENT), true), { body_mutation: { clear_body: true } }, 'the usage chunk it asked for is stripped');
  phase.end();
  assert.equal(ctx.usage?.outputTokens, 2);
  // An error answer without a type is no stream: passed as it came.
  const failed = new ResponsePhase(stream(), 500, {}, false, 1 << 20, undefined);
  assert.deepEqual(failed.chunk(Buffer.from(USAGE_EVENT), true), {});
});

/** What Envoy was told to send for a chunk: the chunk itself without a body mutation, else the mutation's body. */
const sent = (answer: Awaited<ReturnType<ResponsePhase['chunk']>>, chunk: Buffer) => {
  const m = answer.body_mutation;
  return m === undefined ? chunk.length : 'clear_body' in m ? 0 : (m.body as Buffer).length;
};

const content = (text: string) => `data: {"choices":[{"index":0,"delta":{"content":${JSON.stringify(text)}},"finish_reason":null}],"usage":null}\n\n`;

test("bytes_out counts what Envoy is told to send: a stripped usage chunk is not among them, a held body's rewrite is", async () => {
  const ctx = fakeContext({ body: { stream: true } });
  ctx.stream = true;
  ctx.stripStreamUsage = true;
  const phase = new ResponsePhase(ctx, 200, { 'content-type': 'text/event-stream' }, false, 1 << 20, undefined);
  let told = 0;
  for (const [chunk, end] of [[content('Hel'), false], [content('lo'), false], [USAGE_EVENT + 'data: [DONE]\n\n', true]] as const) {
    const body = Buffer.from(chunk);
    told += sent(await phase.chunk(body, end), body);
  }
  assert.ok(told > 0);
  // Before: the model server's bytes, the usage chunk included.
  assert.equal(ctx.bytesOut, told);
  assert.deepEqual(ctx.usage, { inputTokens: 1, outputTokens: 2, cachedTokens: 0 });
  // A body-rewriting flow: what it made goes out, not what the model server sent.
  const held = fakeContext();
  const rewrite = new ResponsePhase(held, 200, { 'content-type': 'application/json' }, false, 1 << 20, () => ({ body: () => Buffer.from('{"short":1}') }));
  assert.deepEqual(rewrite.chunk(Buffer.from('{"choices":[],"usage":'), false), { body_mutation: { clear_body: true } });
  await rewrite.chunk(Buffer.from('{"prompt_tokens":1,"completion_tokens":2}}'), true);
  assert.equal(held.bytesOut, '{"short":1}'.length);
});

test("a stream abandoned after content went out, without the usage chunk it was asked for: the prompt as tollgate counts it and the content events streamed", () => {
  const messages = [{ role: 'user', content: 'hello there friend' }];
  // Asked for usage, as tollgate asks for its records and token quotas (requestStreamUsage).
  const asked = { stream: true, stream_options: { include_usage: true } };
  const ctx = fakeContext({ body: { ...asked, messages } });
  ctx.stream = true;
  ctx.stripStreamUsage = true;
  const phase = new ResponsePhase(ctx, 200, { 'content-type': 'text/event-stream' }, false, 1 << 20, undefined);
  const role = 'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}\n\n';
  const events = role + content('Hel') + content('lo') + content(' "quoted"');
  // Split inside an event, as Envoy may pass it.
  phase.chunk(Buffer.from(events.slice(0, 150)), false);
  phase.chunk(Buffer.from(events.slice(150)), false);
  phase.abandon();
  // Before: no usage at all (the quota kept its whole reservation, the record had no tokens).
  assert.deepEqual(ctx.usage, { inputTokens: countChatTokens(messages), outputTokens: 3, cachedTokens: 0, estimated: true });
  // The prompt figure a token policy counted is the one used.
  const counted = fakeContext({ body: asked });
  counted.apim = { promptTokens: 1234 };
  const again = new ResponsePhase(counted, 200, { 'content-type': 'text/event-stream' }, false, 1 << 20, undefined);
  again.chunk(Buffer.from(content('x')), false);
  again.abandon();
  assert.deepEqual(counted.usage, { inputTokens: 1234, outputTokens: 1, cachedTokens: 0, estimated: true });
  // Nothing sent (Envoy gone before the first chunk), or an error status: no estimate, as before.
  const none = fakeContext({ body: asked });
  new ResponsePhase(none, 200, { 'content-type': 'text/event-stream' }, false, 1 << 20, undefined).abandon();
  assert.equal(none.usage, undefined);
  const failed = fakeContext({ body: asked });
  const error = new ResponsePhase(failed, 500, { 'content-type': 'text/event-stream' }, false, 1 << 20, undefined);
  error.chunk(Buffer.from(content('x')), false);
  error.abandon();
  assert.equal(failed.usage, undefined);
  // Nobody asked for usage (no records, metrics or token quota): nobody reads tokens, so no prompt is counted.
  const unasked = fakeContext({ body: { stream: true } });
  const plain = new ResponsePhase(unasked, 200, { 'content-type': 'text/event-stream' }, false, 1 << 20, undefined);
  plain.chunk(Buffer.from(content('x')), false);
  plain.abandon();
  assert.equal(unasked.usage, undefined);
});

test('a flow that only reads the body (a cache filling) gets a copy up to its limit, and Envoy sends the answer on as it comes', () => {
  const read: string[] = [];
  const observer = () => ({ observes: true, observeLimit: 20, body: (b: Buffer) => (read.push(b.toString()), b) });
  for (const answer of ['{"short":true}', '{"longer than the limit":true}']) {
    const ctx = fakeContext();
    const phase = new ResponsePhase(ctx, 200, { 'content-type': 'application/json', 'content-length': String(answer.length) }, false, 1 << 20, observer);
    assert.ok(!phase.headerMutation?.remove_headers?.includes('content-length'), 'the answer is not rewritten: content-length stays');
    // Before: each chunk cleared (held), then the whole body sent back as a mutation.
    assert.deepEqual(phase.chunk(Buffer.from(answer.slice(0, 5)), false), {});
    assert.deepEqual(phase.chunk(Buffer.from(answer.slice(5)), true), {});
    assert.equal(phase.holding, false);
    phase.end();
    assert.equal(ctx.bytesOut, answer.length);
  }
  assert.deepEqual(read, ['{"short":true}']);
  // Larger than the body limit: before, a 502 "larger than a response policy can hold".
  const big = new ResponsePhase(fakeContext(), 200, { 'content-type': 'application/json' }, false, 8, observer);
  assert.deepEqual(big.chunk(Buffer.from('{"a":"0123456789"}'), true), {});
  big.end();
  assert.equal(read.length, 1);
});

test("a flow's events held at a stream's end (a sanitizer's held text) go out under ext_proc too, as in the data plane", () => {
  const holding = () => ({ event: () => null, eventsAtEnd: () => ['{"choices":[{"delta":{"content":"held"}}]}'] });
  const phase = new ResponsePhase(fakeContext(), 200, { 'content-type': 'text/event-stream' }, false, 1 << 20, holding);
  const answer = phase.chunk(Buffer.from(content('held')), true);
  // Before: the held text was dropped, the stream ending with nothing.
  assert.match(String((answer as { body_mutation: { body: Buffer } }).body_mutation.body), /^data: .*"held".*\n\n$/);
});

test('a rewritten stream the model server ends inside an event ends with the error event, as in the data plane, not the half event', () => {
  let ended = false;
  // A sanitizer's shape: each event read and passed on, text held back for the stream's end.
  const sanitizing = () => ({ event: (data: string) => data, eventsAtEnd: () => ['{"choices":[{"delta":{"content":"held"}}]}'], end: () => void (ended = true) });
  const ctx = fakeContext();
  const phase = new ResponsePhase(ctx, 200, { 'content-type': 'text/event-stream' }, false, 1 << 20, sanitizing);
  const half = 'data: {"choices":[{"index":0,"delta":{"content":"the key is AKIAIOSFODNN7EXAMPLQ';
  const first = phase.chunk(Buffer.from(content('whole') + half.slice(0, 20)), false) as { body_mutation: { body: Buffer } };
  assert.equal(String(first.body_mutation.body), content('whole'));
  const last = phase.chunk(Buffer.from(half.slice(20)), true) as { body_mutation: { body: Buffer } };
  phase.end();
  // Before: the half event went out as it came (the rewrite cannot read it, so a sanitizer passed it), the held text
  // after it, and the record said nothing.
  assert.equal(String(last.body_mutation.body), 'data: {"error":{"message":"The model server ended the answer early (inside an event)","type":"server_error","code":"upstream_error"}}\n\n');
  assert.equal(ctx.errorCode, 'upstream_error');
  assert.equal(ctx.bytesOut, first.body_mutation.body.length + last.body_mutation.body.length);
  assert.equal(ended, false, 'an answer cut short is not complete: a cache filling from it must not keep it');
  // A last event that is whole without its blank line still goes on, rewritten, with the held text after it.
  const whole = new ResponsePhase(fakeContext(), 200, { 'content-type': 'text/event-stream' }, false, 1 << 20, sanitizing);
  const out = whole.chunk(Buffer.from(content('last').trimEnd()), true) as { body_mutation: { body: Buffer } };
  assert.match(String(out.body_mutation.body), /"last".*\n\ndata: .*"held".*\n\n$/s);
});

test('a whole JSON answer without usage is estimated as in the data plane: the prompt counted, the tokens of its text', () => {
  const answer = JSON.stringify({ object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'Hello there, how are you?' } }] });
  const ctx = fakeContext({ body: { messages: [{ role: 'user', content: 'hi' }] } });
  ctx.operation = 'chat.completions';
  ctx.sentUpstream = true;
  ctx.upstreamStatus = 200;
  ctx.apim = { promptTokens: 42 };
  const phase = new ResponsePhase(ctx, 200, { 'content-type': 'application/json' }, false, 1 << 20, undefined);
  phase.chunk(Buffer.from(answer.slice(0, 20)), false);
  phase.chunk(Buffer.from(answer.slice(20)), true);
  phase.end();
  // Before: no usage (the quota kept its whole reservation, the record had no tokens).
  assert.deepEqual(ctx.usage, { inputTokens: 42, outputTokens: countTextTokens('Hello there, how are you?'), cachedTokens: 0, estimated: true });
  // Cut short (Envoy gone before its end): not a whole answer, so nothing is estimated from it.
  const cut = fakeContext({ body: {} });
  Object.assign(cut, { operation: 'chat.completions', sentUpstream: true, upstreamStatus: 200, apim: { promptTokens: 42 } });
  const half = new ResponsePhase(cut, 200, { 'content-type': 'application/json' }, false, 1 << 20, undefined);
  half.chunk(Buffer.from(answer.slice(0, 20)), false);
  half.abandon();
  assert.equal(cut.usage, undefined);
});
