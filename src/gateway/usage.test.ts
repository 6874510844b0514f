import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CompletionText } from './completion-text.js';
import { isEventStream } from './media-type.js';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { MAX_HELD_EVENT, SseRewriter } from './sse-rewriter.js';
import { UsageScanner, responseIdOfJson, toUsage, usageOfJson, usageScannerFor } from './usage.js';

test('usage of a JSON answer, including content that mentions usage', () => {
  const cases: [string, unknown][] = [
    [JSON.stringify({ choices: [{ message: { content: 'the "usage" {key} is }' } }], usage: { prompt_tokens: 3, completion_tokens: 4, prompt_tokens_details: { cached_tokens: 2 } } }), { inputTokens: 3, outputTokens: 4, cachedTokens: 2 }],
    [JSON.stringify({ usage: { input_tokens: 5, output_tokens: 6 }, output: [] }), { inputTokens: 5, outputTokens: 6, cachedTokens: 0 }],
    [JSON.stringify({ choices: [] }), undefined],
    ['<html>bad gateway</html>', undefined],
    // A Responses answer in OpenAI's field order repeats the client's metadata after usage: its "usage" key is not it.
    [JSON.stringify({ output: [], usage: { input_tokens: 900, output_tokens: 4000 }, user: null, metadata: { usage: '{}' } }), { inputTokens: 900, outputTokens: 4000, cachedTokens: 0 }],
    [JSON.stringify({ output: [], metadata: { usage: { input_tokens: 1, output_tokens: 1 } } }), undefined],
    // After the usage object, more members (vLLM's prompt_logprobs), strings with braces, nested objects.
    [JSON.stringify({ choices: [], usage: { prompt_tokens: 2, completion_tokens: 3 }, prompt_logprobs: [null, { '1': { logprob: -1, decoded_token: '}"{' } }], note: 'a } in text' }), { inputTokens: 2, outputTokens: 3, cachedTokens: 0 }],
  ];
  for (const [body, expected] of cases) assert.deepEqual(usageOfJson(Buffer.from(body)), expected, body);
});

test('usage that is not counts is no usage: negative, fractional, or text', () => {
  for (const usage of [{ prompt_tokens: 5, completion_tokens: -100000 }, { prompt_tokens: 5, completion_tokens: 2.5 }, { prompt_tokens: '5', completion_tokens: '7' }, { prompt_tokens: 1, completion_tokens: 1, prompt_tokens_details: { cached_tokens: -1 } }]) {
    assert.equal(usageOfJson(Buffer.from(JSON.stringify({ choices: [], usage }))), undefined, JSON.stringify(usage));
  }
  assert.deepEqual(toUsage({ prompt_tokens: 0, completion_tokens: 0 }), { inputTokens: 0, outputTokens: 0, cachedTokens: 0 });
});

test('usage without an input count is no usage: {}, nulls, total_tokens alone; an absent or null output or cached count is 0', () => {
  // Before: each was 0 tokens, exact, and the generation was free.
  for (const usage of [{}, { prompt_tokens: null, completion_tokens: null, total_tokens: null }, { total_tokens: 33 }, { completion_tokens: 22 }, { output_tokens: 5 }]) {
    assert.equal(toUsage(usage as Parameters<typeof toUsage>[0]), undefined, JSON.stringify(usage));
  }
  // An embeddings answer has no output; pydantic writes an unset field as null.
  assert.deepEqual(toUsage({ prompt_tokens: 8, total_tokens: 8 } as Parameters<typeof toUsage>[0]), { inputTokens: 8, outputTokens: 0, cachedTokens: 0 });
  assert.deepEqual(toUsage({ prompt_tokens: 8, completion_tokens: null, prompt_tokens_details: null }), { inputTokens: 8, outputTokens: 0, cachedTokens: 0 });
  assert.deepEqual(toUsage({ input_tokens: 3, output_tokens: 4, input_tokens_details: { cached_tokens: null } }), { inputTokens: 3, outputTokens: 4, cachedTokens: 0 });
});

test('counts whose total is not a safe integer are no usage, as one such count is', () => {
  // Before: each passed on its own; the record billed the sum and the quota's settle refused it (or locked the app out).
  for (const [input, output] of [
    [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    [2 ** 52, 2 ** 52],
    [Number.MAX_SAFE_INTEGER, 1],
  ]) {
    assert.equal(toUsage({ prompt_tokens: input, completion_tokens: output }), undefined, `${input} + ${output}`);
  }
  assert.deepEqual(toUsage({ prompt_tokens: Number.MAX_SAFE_INTEGER - 1, completion_tokens: 1 }), { inputTokens: Number.MAX_SAFE_INTEGER - 1, outputTokens: 1, cachedTokens: 0 });
});

test('a stream whose usage chunk has no counts has no usage (its content events are counted for the estimate); one after a good chunk leaves it', () => {
  const content = 'data: {"choices":[{"delta":{"content":"x"}}],"usage":null}\n\n'.repeat(50);
  const empty = new UsageScanner('text/event-stream');
  empty.push(Buffer.from(`${content}data: {"choices":[],"usage":{}}\n\ndata: [DONE]\n\n`));
  assert.equal(empty.end(), undefined);
  assert.equal(empty.contentEvents, 50);
  const good = new UsageScanner('text/event-stream');
  good.push(Buffer.from(`${content}data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":50}}\n\ndata: {"choices":[],"usage":{}}\n\ndata: [DONE]\n\n`));
  assert.deepEqual(good.end(), { inputTokens: 9, outputTokens: 50, cachedTokens: 0 });
});

test('usage from an SSE stream split at every byte', () => {
  const stream = 'data: {"choices":[{"delta":{"content":"x"}}]}\n\ndata: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":9}}\n\ndata: [DONE]\n\n';
  const s = new UsageScanner('text/event-stream');
  for (const ch of Buffer.from(stream)) s.push(Buffer.from([ch]));
  assert.deepEqual(s.end(), { inputTokens: 7, outputTokens: 9, cachedTokens: 0 });
  assert.equal(s.events, 3);
});

test('a usage chunk split over several data lines of one event is read whole, as the SSE spec (and usage stripping) joins them', () => {
  const stream = 'data: {"choices":[{"delta":{"content":"x"}}]}\n\nevent: usage\ndata: {"choices":[],\ndata:"usage":{"prompt_tokens":11,\n: a comment\ndata:  "completion_tokens":22}}\n\ndata: [DONE]\n\n';
  for (const split of [stream.length, 1]) {
    const s = new UsageScanner('text/event-stream');
    for (let at = 0; at < stream.length; at += split) s.push(Buffer.from(stream.slice(at, at + split)));
    // Before: each line was parsed on its own, and the stream was estimated.
    assert.deepEqual(s.end(), { inputTokens: 11, outputTokens: 22, cachedTokens: 0 }, `in pieces of ${split}`);
    assert.equal(s.events, 3);
    assert.equal(s.contentEvents, 1);
  }
  // What the proxy's rewriter gives usage stripping for that event: the same payload, so both see the usage chunk.
  const payloads: string[] = [];
  new SseRewriter((data) => (payloads.push(data), data)).push(Buffer.from(stream));
  assert.deepEqual(JSON.parse(payloads[1]), { choices: [], usage: { prompt_tokens: 11, completion_tokens: 22 } });
});

test('an event that ends with the stream, without its blank line, is still read; one over MAX_HELD_EVENT in many lines is not held', () => {
  const cut = new UsageScanner('text/event-stream');
  cut.push(Buffer.from('data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\n'));
  assert.deepEqual(cut.end(), { inputTokens: 1, outputTokens: 2, cachedTokens: 0 });
  // Nor even its line end (split across chunks too): the client got the event whole, so its usage counts.
  const bare = new UsageScanner('text/event-stream');
  bare.push(Buffer.from('data: {"choices":[],"usage":{"prompt_tok'));
  bare.push(Buffer.from('ens":5,"completion_tokens":6}}'));
  assert.deepEqual(bare.end(), { inputTokens: 5, outputTokens: 6, cachedTokens: 0 });
  const responses = new UsageScanner('text/event-stream');
  responses.push(Buffer.from('event: response.completed\ndata: {"type":"response.completed","response":{"usage":{"input_tokens":7,"output_tokens":8}}}'));
  assert.equal(responses.end()?.inputTokens, 7);
  // A half line is no event: nothing read from it, not even a token of content (a stream cut there is estimated without it).
  const half = new UsageScanner('text/event-stream');
  half.push(Buffer.from('data: {"choices":[{"index":0,"delta":{"content":"to'));
  assert.equal(half.end(), undefined);
  assert.equal(half.contentEvents, 0);
  const long = new UsageScanner('text/event-stream');
  const line = `data: ${'x'.repeat(1023)}\n`;
  for (let i = 0; i < (MAX_HELD_EVENT / 1024) * 2; i++) long.push(Buffer.from(line));
  long.push(Buffer.from('\ndata: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}\n\n'));
  assert.deepEqual(long.end(), { inputTokens: 3, outputTokens: 4, cachedTokens: 0 });
  assert.equal(long.events, 1, 'the oversized event is skipped');
});

test('a stream whose media type is written in another case is a stream (media types are case-insensitive)', () => {
  const s = new UsageScanner('Text/Event-Stream; charset=UTF-8');
  s.push(Buffer.from('data: {"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3}}\n\ndata: [DONE]\n\n'));
  assert.deepEqual(s.end(), { inputTokens: 2, outputTokens: 3, cachedTokens: 0 });
  assert.equal(isEventStream('application/json'), false);
  assert.equal(isEventStream('text/event-streamer'), false);
});

test('a Responses API stream reports usage in response.completed', () => {
  const s = new UsageScanner('text/event-stream; charset=utf-8');
  s.push(Buffer.from('event: response.completed\ndata: {"type":"response.completed","response":{"usage":{"input_tokens":2,"output_tokens":5}}}\n\n'));
  assert.deepEqual(s.end(), { inputTokens: 2, outputTokens: 5, cachedTokens: 0 });
});

test('chunks saying "usage":null are not taken for the usage chunk; the last one, with an object, is', () => {
  const s = new UsageScanner('text/event-stream');
  s.push(Buffer.from('data: {"choices":[{"delta":{"content":"the \\"usage\\": {"}}],"usage":null}\n\n'));
  s.push(Buffer.from('data: {"choices":[{"delta":{"content":"x"}}],"usage" : null}\n\n'));
  assert.equal(s.usage, undefined);
  s.push(Buffer.from('data: {"choices":[],"usage" : {"prompt_tokens":7,"completion_tokens":2}}\n\ndata: [DONE]\n\n'));
  assert.deepEqual(s.end(), { inputTokens: 7, outputTokens: 2, cachedTokens: 0 });
  assert.equal(s.events, 4);
});

test('a long SSE line arriving in many chunks is searched for its newline once, not once per chunk', () => {
  // Counts the characters String#indexOf searches while the scanner runs (no timing): searching the held start of
  // the line again with each chunk made a 4 MiB line in 1 KiB chunks cost 4.4 s.
  const indexOf = String.prototype.indexOf;
  let searched = 0;
  String.prototype.indexOf = function (this: string, search: string, from?: number) {
    searched += this.length - Math.max(0, from ?? 0);
    return indexOf.call(this, search, from);
  };
  const s = new UsageScanner('text/event-stream');
  const chunks = 2000;
  const piece = Buffer.from('x'.repeat(100));
  try {
    s.push(Buffer.from('data: {"usage":{"prompt_tokens":4,"completion_tokens":1},"pad":"'));
    for (let i = 0; i < chunks; i++) s.push(piece);
    s.push(Buffer.from('"}\n\n'));
  } finally {
    String.prototype.indexOf = indexOf;
  }
  const total = chunks * piece.length + 100;
  assert.ok(searched < 3 * total, `searched ${searched} characters for a ${total}-character stream`);
  assert.deepEqual(s.end(), { inputTokens: 4, outputTokens: 1, cachedTokens: 0 });
  assert.equal(s.events, 1);
});

test('streamed text split inside a multi-byte character, in a CRLF stream, reaches the completion text whole', () => {
  const stream = 'data: {"choices":[{"delta":{"content":"añ€"}}]}\r\n\r\ndata: {"choices":[{"delta":{"content":"😀!"}}]}\r\n\r\ndata: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\r\n\r\n';
  const text = new CompletionText();
  const s = new UsageScanner('text/event-stream', text);
  for (const byte of Buffer.from(stream)) s.push(Buffer.from([byte]));
  assert.deepEqual(s.end(), { inputTokens: 1, outputTokens: 2, cachedTokens: 0 });
  assert.equal(text.text, 'añ€😀!');
});

test('usage from a stream whose lines end in CR alone (valid SSE), split anywhere', () => {
  // Before: lines were split at LF only, so a CR stream was one endless line and its usage never counted.
  const stream = 'data: {"choices":[{"delta":{"content":"x"}}]}\r\rdata: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":9}}\r\rdata: [DONE]\r\r';
  for (const size of [1, 2, 3, 1000]) {
    const text = new CompletionText();
    const s = new UsageScanner('text/event-stream', text);
    const bytes = Buffer.from(stream);
    for (let i = 0; i < bytes.length; i += size) s.push(bytes.subarray(i, i + size));
    assert.deepEqual(s.end(), { inputTokens: 7, outputTokens: 9, cachedTokens: 0 }, `split every ${size} bytes`);
    assert.equal(s.events, 3);
    assert.equal(text.text, 'x');
  }
});

test('a JSON answer over 4 MiB (an embeddings batch) still gives its usage, read from the tail it ends with', () => {
  const answer = Buffer.from(JSON.stringify({ data: [{ embedding: 'x'.repeat(5 * 1024 * 1024) }], usage: { prompt_tokens: 7, total_tokens: 7 } }));
  const scanner = new UsageScanner('application/json');
  for (let i = 0; i < answer.length; i += 65_536) scanner.push(answer.subarray(i, i + 65_536));
  // Before: every held chunk was dropped past 4 MiB, the usage with them.
  assert.deepEqual(scanner.end(), { inputTokens: 7, outputTokens: 0, cachedTokens: 0 });
});

/** `answer` in pieces of `sizes()` bytes, with a cut at each of `cuts` too (a key split across two chunks). */
function split(answer: Buffer, sizes: () => number, cuts: number[] = []): Buffer[] {
  const pieces: Buffer[] = [];
  for (let at = 0; at < answer.length; ) {
    let end = Math.min(answer.length, at + sizes());
    for (const cut of cuts) if (cut > at && cut < end) end = cut;
    pieces.push(answer.subarray(at, end));
    at = end;
  }
  return pieces;
}

/** A seeded generator of chunk sizes from 1 to `max` (mulberry32): the same "random" split on every run. */
function randomSizes(seed: number, max: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return 1 + (((t ^ (t >>> 14)) >>> 0) % max);
  };
}

/** A JSON answer of about `bytes` bytes that ends with its usage, as embeddings and completions answers do. */
function answerOf(bytes: number): Buffer {
  return Buffer.from(JSON.stringify({ data: [{ embedding: 'x'.repeat(bytes) }], usage: { prompt_tokens: 11, completion_tokens: 13, prompt_tokens_details: { cached_tokens: 5 } } }));
}

test('a JSON answer gives the same usage however it is split: 1 byte, 1 KiB, random sizes, larger than the tail, a key split in two', () => {
  const expected = { inputTokens: 11, outputTokens: 13, cachedTokens: 5 };
  // Below the tail, between the tail and the whole-answer limit, and past that limit (only the tail is held).
  for (const bytes of [1000, 100 * 1024, 4 * 1024 * 1024 + 200 * 1024]) {
    const answer = answerOf(bytes);
    const key = answer.lastIndexOf('"usage"');
    // Cuts inside the usage key, inside its object, and on either side of where the last 64 KiB begin.
    const cuts = [key + 3, key + 20, answer.length - 64 * 1024 - 1, answer.length - 64 * 1024 + 1];
    const splits: [string, Buffer[]][] = [
      ['1 KiB', split(answer, () => 1024, cuts)],
      ['random sizes up to 3 KiB', split(answer, randomSizes(bytes, 3 * 1024), cuts)],
      ['random sizes up to 200 KiB (chunks larger than the tail)', split(answer, randomSizes(bytes + 1, 200 * 1024), cuts)],
      ['one chunk', [answer]],
    ];
    // Byte by byte for the last 300 KiB (all of it but for the largest answer, whose first bytes come as one chunk).
    const head = answer.subarray(0, Math.max(0, answer.length - 300 * 1024));
    splits.push(['1 byte', [...(head.length > 0 ? [head] : []), ...split(answer.subarray(head.length), () => 1)]]);
    for (const [name, pieces] of splits) {
      const scanner = new UsageScanner('application/json');
      for (const piece of pieces) scanner.push(piece);
      assert.deepEqual(scanner.end(), expected, `${answer.length} bytes in ${name}`);
    }
  }
});

test('a JSON answer past 4 MiB is not copied with every chunk: its tail is joined once, at the end', () => {
  // Counts the bytes Buffer.concat produces while the scanner runs (no timing): joining the 64 KiB tail with each
  // chunk copied 64 KiB per 1 KiB chunk, 1 s of the event loop for a 50 MiB answer.
  const answer = answerOf(6 * 1024 * 1024);
  const concat = Buffer.concat;
  let copied = 0;
  Buffer.concat = (list: readonly Uint8Array[], totalLength?: number) => {
    const out = concat(list, totalLength);
    copied += out.length;
    return out;
  };
  const scanner = new UsageScanner('application/json');
  let usage;
  try {
    for (const piece of split(answer, () => 1024)) scanner.push(piece);
    usage = scanner.end();
  } finally {
    Buffer.concat = concat;
  }
  assert.deepEqual(usage, { inputTokens: 11, outputTokens: 13, cachedTokens: 5 });
  assert.ok(copied <= 2 * 64 * 1024, `copied ${copied} bytes for a ${answer.length}-byte answer`);
});

test('an SSE line too long to hold is skipped, and the usage chunk after it is still read', () => {
  const scanner = new UsageScanner('text/event-stream');
  scanner.push(Buffer.from('data: '));
  for (let i = 0; i < 6; i++) scanner.push(Buffer.from('a'.repeat(1024 * 1024)));
  scanner.push(Buffer.from('\n\ndata: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\n'));
  assert.deepEqual(scanner.end(), { inputTokens: 1, outputTokens: 2, cachedTokens: 0 });
  assert.equal(scanner.events, 1, 'the skipped line is not counted as an event');
});

test('a compressed JSON answer has its usage read from a decoded copy, bounded; a compressed stream or an unknown coding has none', () => {
  const answer = Buffer.from(JSON.stringify({ choices: [{ message: { content: 'hi' } }], usage: { prompt_tokens: 3, completion_tokens: 4 } }));
  const read = (encoding: string, body: Buffer, limit = 1 << 20, contentType = 'application/json') => {
    const scanner = usageScannerFor({ 'content-type': contentType, 'content-encoding': encoding }, undefined, limit);
    if (!scanner) return null;
    for (let i = 0; i < body.length; i += 7) scanner.push(body.subarray(i, i + 7));
    return scanner.end();
  };
  // Before: no scanner for any compressed answer, so a quota kept its whole reservation and analytics had no tokens.
  for (const [encoding, body] of [['gzip', gzipSync(answer)], ['GZIP', gzipSync(answer)], ['deflate', deflateSync(answer)], ['br', brotliCompressSync(answer)]] as const) {
    assert.deepEqual(read(encoding, body), { inputTokens: 3, outputTokens: 4, cachedTokens: 0 }, encoding);
  }
  // Bounded both ways: more compressed bytes than the limit, or more once decoded (a small bomb), are not read.
  assert.equal(read('gzip', gzipSync(answer), 10), undefined);
  const bomb = gzipSync(Buffer.concat([Buffer.from('{"pad":"'), Buffer.alloc(4 << 20, 'a'), Buffer.from('","usage":{"prompt_tokens":1,"completion_tokens":1}}')]));
  assert.ok(bomb.length < 1 << 20);
  assert.equal(read('gzip', bomb, 1 << 20), undefined);
  assert.equal(read('gzip', Buffer.from('not gzip at all')), undefined);
  assert.equal(read('zstd', answer), null);
  assert.equal(read('gzip', gzipSync('data: {}\n\n'), 1 << 20, 'text/event-stream'), null);
});

test('content events: one per event that carries generated text, whichever API streams it', () => {
  const cases: [unknown, number][] = [
    [{ choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] }, 0],
    [{ choices: [{ index: 0, delta: { content: 'Hi' }, logprobs: { content: [{ token: 'Hi', logprob: -0.1 }] } }] }, 1],
    [{ choices: [{ index: 0, delta: { reasoning_content: 'think' } }] }, 1],
    [{ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"q' } }] } }] }, 1],
    [{ choices: [{ index: 0, text: ' world', finish_reason: null }] }, 1],
    [{ type: 'response.output_text.delta', delta: 'Hey', output_index: 0 }, 1],
    [{ type: 'response.content_part.added', part: { type: 'output_text', text: '' } }, 0],
    [{ type: 'response.function_call_arguments.delta', delta: '{"q', item_id: 'fc_1' }, 1],
    // The closing events repeat the whole text: counted, a cut stream's three deltas were estimated at six tokens.
    [{ type: 'response.output_text.done', text: 'Hey you', output_index: 0 }, 0],
    [{ type: 'response.content_part.done', part: { type: 'output_text', text: 'Hey you' } }, 0],
    [{ type: 'response.output_item.done', item: { type: 'message', content: [{ type: 'output_text', text: 'Hey you' }] } }, 0],
    [{ type: 'response.function_call_arguments.done', arguments: '{"q":1}' }, 0],
    [{ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }, 0],
    [{ choices: [], usage: { prompt_tokens: 1, completion_tokens: 2 } }, 0],
    // Text that mentions a key is inside a string: its quotes are escaped.
    [{ choices: [{ index: 0, delta: { content: '' }, note: 'say "content":"x"' }] }, 0],
  ];
  for (const [event, n] of cases) {
    const scanner = new UsageScanner('text/event-stream');
    scanner.push(Buffer.from(`data: ${JSON.stringify(event)}\n\n`));
    assert.equal(scanner.contentEvents, n, JSON.stringify(event));
  }
  const stream = new UsageScanner('text/event-stream');
  stream.push(Buffer.from('data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: {"choices":[{"delta":{"con'));
  stream.push(Buffer.from('tent":"b"}}]}\n\ndata: [DONE]\n\n'));
  assert.equal(stream.contentEvents, 2);
});

test("a Responses answer's id: read from its first key, else from the whole answer; none from other answers", () => {
  assert.equal(responseIdOfJson(Buffer.from(' {\n "id": "resp_abc", "object": "response", "output": []}')), 'resp_abc');
  assert.equal(responseIdOfJson(Buffer.from('{"object":"response","created_at":1,"id":"resp_late"}')), 'resp_late');
  assert.equal(responseIdOfJson(Buffer.from('{"object":"chat.completion","id":"chatcmpl-1"}')), undefined);
  assert.equal(responseIdOfJson(Buffer.from('{"error":{"message":"x"}}')), undefined);
  assert.equal(responseIdOfJson(Buffer.from('<html>502</html>')), undefined);
});

test("a Responses stream's id comes from its first event carrying the response, split anywhere; told once", () => {
  const stream =
    'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"resp_s1","status":"in_progress"}}\n\n' +
    'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"hi"}\n\n' +
    'event: response.completed\ndata: {"type":"response.completed","response":{"id":"resp_s1","usage":{"input_tokens":3,"output_tokens":1}}}\n\n';
  const ids: string[] = [];
  const scanner = usageScannerFor({ 'content-type': 'text/event-stream' }, undefined, 1 << 20, (id) => ids.push(id))!;
  for (let i = 0; i < stream.length; i += 7) scanner.push(Buffer.from(stream.slice(i, i + 7)));
  scanner.end();
  assert.deepEqual(ids, ['resp_s1']);
  assert.equal(scanner.usage?.inputTokens, 3);
});

test('a JSON Responses answer tells its id at the end; compressed ones too, once decoded', () => {
  const body = JSON.stringify({ id: 'resp_j', object: 'response', usage: { input_tokens: 2, output_tokens: 1 } });
  for (const [headers, bytes] of [
    [{ 'content-type': 'application/json' }, Buffer.from(body)],
    [{ 'content-type': 'application/json', 'content-encoding': 'gzip' }, gzipSync(body)],
  ] as const) {
    const ids: string[] = [];
    const scanner = usageScannerFor(headers, undefined, 1 << 20, (id) => ids.push(id))!;
    scanner.push(bytes);
    scanner.end();
    assert.deepEqual(ids, ['resp_j']);
  }
});

test("a Responses answer over 4 MiB still tells its id, read from its first bytes before they are dropped", () => {
  const ids: string[] = [];
  const scanner = usageScannerFor({ 'content-type': 'application/json' }, undefined, 64 << 20, (id) => ids.push(id))!;
  const head = Buffer.from('{"id":"resp_big","object":"response","metadata":{"pad":"');
  scanner.push(head.subarray(0, 3));
  scanner.push(head.subarray(3));
  for (let i = 0; i < 5; i++) scanner.push(Buffer.alloc(1 << 20, 0x61));
  scanner.push(Buffer.from('"},"usage":{"input_tokens":2,"output_tokens":1}}'));
  scanner.end();
  assert.deepEqual(ids, ['resp_big']);
  assert.equal(scanner.usage?.outputTokens, 1);
});

/** A Responses stream whose response object echoes `metadata` of `pad` characters, the simulator's (and OpenAI's) key order or vLLM's. */
function echoingStream(pad: number, order: 'openai' | 'vllm', usageAfter = '') {
  const response = (status: string, usage: string) =>
    `{"id":"resp_echo","object":"response","status":"${status}","metadata":{"note":"${'x'.repeat(pad)}"},"output":[]${usage}${usageAfter}}`;
  const event = (type: string, seq: number, body: string) =>
    `event: ${type}\ndata: ${order === 'openai' ? `{"type":"${type}","sequence_number":${seq},"response":${body}}` : `{"response":${body},"sequence_number":${seq},"type":"${type}"}`}\n\n`;
  return (
    event('response.created', 0, response('in_progress', ',"usage":null')) +
    'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":1,"delta":"hi"}\n\n' +
    event('response.completed', 2, response('completed', ',"usage":{"input_tokens":7,"input_tokens_details":{"cached_tokens":2},"output_tokens":8,"total_tokens":15}'))
  );
}

function scanInChunks(stream: string, chunk: number) {
  const ids: string[] = [];
  const scanner = usageScannerFor({ 'content-type': 'text/event-stream' }, undefined, 1 << 20, (id) => ids.push(id))!;
  const bytes = Buffer.from(stream);
  for (let i = 0; i < bytes.length; i += chunk) scanner.push(bytes.subarray(i, i + chunk));
  return { ids, usage: scanner.end() };
}

test("a Responses stream whose events outgrow MAX_HELD_EVENT (a large echoed metadata) still tells its id and its usage", () => {
  for (const order of ['openai', 'vllm'] as const) {
    for (const chunk of [64 * 1024, 1 << 20, 4097]) {
      // Before: both events were skipped whole: no id (the response neither routed nor owned), and an estimated usage.
      const { ids, usage } = scanInChunks(echoingStream(MAX_HELD_EVENT + (1 << 20), order), chunk);
      assert.deepEqual(ids, ['resp_echo'], `${order}, ${chunk}-byte chunks`);
      assert.deepEqual(usage, { inputTokens: 7, outputTokens: 8, cachedTokens: 2 }, `${order}, ${chunk}-byte chunks`);
    }
  }
});

test('an oversized event of many data lines is read at its ends too', () => {
  const line = `data: ${'y'.repeat(1023)}\n`;
  const head = 'event: response.completed\ndata: {"type":"response.completed","sequence_number":3,"response":{"id":"resp_lines","metadata":{"a":"\n';
  const stream = head + line.repeat((MAX_HELD_EVENT / 1024) * 2) + 'data: "},"usage":{"input_tokens":4,"output_tokens":5}}}\n\n';
  const { ids, usage } = scanInChunks(stream, 64 * 1024);
  assert.deepEqual(ids, ['resp_lines']);
  assert.deepEqual(usage, { inputTokens: 4, outputTokens: 5, cachedTokens: 0 });
});

test("what a client echoes cannot pass for an oversized event's id or usage", () => {
  // A usage object inside the echoed metadata after the real one: one level too deep, so none is read rather than it.
  const fakeUsage = ',"extra":{"usage":{"input_tokens":1,"output_tokens":1}}';
  const spoofed = scanInChunks(echoingStream(MAX_HELD_EVENT + (1 << 20), 'openai', fakeUsage), 1 << 16);
  assert.equal(spoofed.usage, undefined);
  // An id inside the metadata: the response object's first key is its id, or none is read.
  const echoed = `event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"metadata":{"id":"resp_fake","pad":"${'z'.repeat(MAX_HELD_EVENT + (1 << 20))}"},"id":"resp_real"}}\n\n`;
  assert.deepEqual(scanInChunks(echoed, 1 << 16).ids, []);
});

test("a Responses stream's lifecycle events are not its first token: response.created, queued and in_progress come before any generation", () => {
  const event = (type: string, more: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...more })}\n\n`;
  const response = { id: 'resp_1', object: 'response', status: 'in_progress', output: [], usage: null, error: null };
  const s = new UsageScanner('text/event-stream');
  s.push(Buffer.from(event('response.created', { response }) + event('response.queued', { response }) + event('response.in_progress', { response })));
  // Before: 3, so TTFT was taken at response.created, whatever the queueing and prefill after it.
  assert.equal(s.events, 0);
  s.push(Buffer.from(event('response.output_text.delta', { item_id: 'm1', output_index: 0, content_index: 0, delta: 'hi' })));
  assert.equal(s.events, 1);
  assert.equal(s.upstreamError, false, 'the response\'s "error":null is no error');
});

test('an in-band error event marks the stream failed: vLLM\'s {"error":{...}}, a Responses error or response.failed; text about errors does not', () => {
  const failed = [
    'data: {"error":{"object":"error","message":"engine died","type":"InternalServerError","code":500}}\n\ndata: [DONE]\n\n',
    'event: error\ndata: {"type":"error","code":"server_error","message":"engine died","param":null,"sequence_number":3}\n\n',
    'event: response.failed\ndata: {"type":"response.failed","response":{"id":"resp_1","status":"failed","error":{"code":"server_error","message":"engine died"}}}\n\n',
  ];
  for (const stream of failed) {
    const s = new UsageScanner('text/event-stream');
    for (const ch of Buffer.from(stream)) s.push(Buffer.from([ch]));
    s.end();
    assert.equal(s.upstreamError, true, stream);
  }
  const fine = new UsageScanner('text/event-stream');
  fine.push(Buffer.from('data: {"choices":[{"delta":{"content":"{\\"error\\":{\\"type\\":\\"error\\"}}"}}]}\n\ndata: [DONE]\n\n'));
  fine.end();
  assert.equal(fine.upstreamError, false);
});
