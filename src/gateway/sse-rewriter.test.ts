import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_HELD_EVENT, SseRewriter, UNREAD_EVENT, eventsAtEnd, isCutShort, stripUsage, withUsageStripped } from './sse-rewriter.js';

const STREAM =
  'data: {"choices":[{"delta":{"content":"añ€😀"}}],"usage":null}\n\n' +
  'data: {"choices":[{"delta":{"content":"b"}}],"usage":null}\n\n' +
  'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n' +
  'data: [DONE]\n\n';

function run(rewriter: SseRewriter, stream: string, size: number): string {
  const bytes = Buffer.from(stream);
  let out = '';
  for (let i = 0; i < bytes.length; i += size) out += rewriter.push(bytes.subarray(i, i + size));
  return out + rewriter.end();
}

test('stripping usage: the usage-only event and usage:null fields go, wherever the stream is split', () => {
  const expected = 'data: {"choices":[{"delta":{"content":"añ€😀"}}]}\n\n' + 'data: {"choices":[{"delta":{"content":"b"}}]}\n\n' + 'data: [DONE]\n\n';
  for (let size = 1; size <= Buffer.byteLength(STREAM); size++) assert.equal(run(new SseRewriter(stripUsage), STREAM, size), expected, `split every ${size} bytes`);
});

test('an identity rewrite passes the stream through byte for byte, event lines included', () => {
  const stream = 'event: response.output_text.delta\ndata: {"delta":"x"}\n\n: comment\n\ndata: [DONE]\n\n';
  for (const size of [1, 3, 7, 1000]) assert.equal(run(new SseRewriter((d) => d), stream, size), stream);
});

test('a rewrite replaces payloads and keeps other lines', () => {
  const out = run(new SseRewriter((d) => d.replace('secret', '[REDACTED]')), 'event: x\ndata: {"t":"secret"}\n\n', 4);
  assert.equal(out, 'event: x\ndata: {"t":"[REDACTED]"}\n\n');
});

test('a long event arriving in many chunks is searched for its blank line once, not once per chunk', () => {
  // Counts the characters String#lastIndexOf searches while the rewriter runs (no timing): searching the held event
  // again with each chunk made a 4 MiB event in 1 KiB chunks cost 7 s.
  const lastIndexOf = String.prototype.lastIndexOf;
  let searched = 0;
  String.prototype.lastIndexOf = function (this: string, search: string, from?: number) {
    searched += Math.min(this.length, (from ?? this.length) + search.length);
    return lastIndexOf.call(this, search, from);
  };
  const chunks = 2000;
  const piece = 'x'.repeat(100);
  const stream = `event: big\ndata: {"t":"${piece.repeat(chunks)}"}\n\ndata: [DONE]\n\n`;
  let out: string;
  try {
    out = run(new SseRewriter((d) => d), stream, 100);
  } finally {
    String.prototype.lastIndexOf = lastIndexOf;
  }
  assert.equal(out, stream);
  assert.ok(searched < 3 * stream.length, `searched ${searched} characters for a ${stream.length}-character stream`);
});

test('a blank line split across chunks ends the event, whatever the split', () => {
  const stream = 'data: a\ndata: b\n\ndata: c\n\n';
  for (let size = 1; size <= stream.length; size++) {
    const seen: string[] = [];
    const out = run(new SseRewriter((d) => (seen.push(d), d)), stream, size);
    assert.equal(out, stream);
    assert.deepEqual(seen, ['a\nb', 'c'], `split every ${size} bytes`);
  }
});

test('streams whose lines end in CRLF (or CR) are rewritten event by event too, wherever a CR and its LF are split', () => {
  const expected = 'data: {"choices":[{"delta":{"content":"añ€😀"}}]}\n\n' + 'data: {"choices":[{"delta":{"content":"b"}}]}\n\n' + 'data: [DONE]\n\n';
  const crlf = STREAM.replaceAll('\n', '\r\n');
  for (let size = 1; size <= Buffer.byteLength(crlf); size++) assert.equal(run(new SseRewriter(stripUsage), crlf, size), expected, `CRLF split every ${size} bytes`);
  assert.equal(run(new SseRewriter(stripUsage), STREAM.replaceAll('\n', '\r'), 5), expected, 'CR alone');
  // An event is released as soon as its blank line arrives, not held to the end of the stream.
  const r = new SseRewriter((d) => d);
  assert.equal(r.push(Buffer.from('data: {"a":1}\r\n\r\n')), 'data: {"a":1}\n\n');
  assert.equal(r.push(Buffer.from('data: x\r')), '');
  assert.equal(r.end(), 'data: x\n');
});

test('an event of a CR stream goes out as soon as its blank line is in, not with the next chunk', () => {
  // Before: a chunk's last CR was held for the next chunk, so each event waited for the next one to come.
  const r = new SseRewriter((d) => d);
  assert.equal(r.push(Buffer.from('data: {"a":1}\r\r')), 'data: {"a":1}\n\n');
  assert.equal(r.push(Buffer.from('data: {"b":2}\r')), '');
  assert.equal(r.push(Buffer.from('\r')), 'data: {"b":2}\n\n');
  // A CRLF blank line is complete at its CR too: the LF, coming next, is not a line of its own.
  assert.equal(r.push(Buffer.from('data: {"c":3}\r\n\r')), 'data: {"c":3}\n\n');
  assert.equal(r.push(Buffer.from('\ndata: {"d":4}\r\n\r\n')), 'data: {"d":4}\n\n');
  assert.equal(r.end(), '');
});

test('stripping usage takes it off a content chunk that carries it too (llama.cpp\'s last chunk, continuous usage stats)', () => {
  // Before: only a usage-only event was dropped; this one reached a client that never asked for usage.
  const chunk = '{"id":"x","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}';
  assert.equal(stripUsage(chunk), '{"id":"x","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}');
  assert.equal(stripUsage('{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}'), null);
  // Text that only mentions usage is left alone.
  assert.equal(stripUsage('{"choices":[{"delta":{"content":"\\"usage\\": {}"}}]}'), '{"choices":[{"delta":{"content":"\\"usage\\": {}"}}]}');
});

test('stripping usage drops a usage chunk without a `choices` key whole, as one with empty choices', () => {
  // Before: its usage was taken out and the rest sent, a chunk without choices that the usual client loop
  // (`chunk.choices[0]?.delta`) cannot read, for an event the client never asked for.
  assert.equal(stripUsage('{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","usage":{"prompt_tokens":3,"completion_tokens":2}}'), null);
  assert.equal(stripUsage('{"id":"c1","choices":[{"delta":{"content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}'), '{"id":"c1","choices":[{"delta":{"content":"hi"}}]}');
});

test('"usage":null goes wherever it stands in the chunk: first, last, alone', () => {
  assert.equal(stripUsage('{"usage":null,"id":"x","choices":[]}'), '{"id":"x","choices":[]}');
  assert.equal(stripUsage('{"id":"x", "usage" : null }'), '{"id":"x" }');
  assert.equal(stripUsage('{"usage":null}'), '{}');
  // vLLM's way, last and without spaces (taken off without a search), also when the text mentions "usage" too.
  assert.equal(stripUsage('{"id":"x","choices":[{"delta":{"content":"hi"}}],"usage":null}'), '{"id":"x","choices":[{"delta":{"content":"hi"}}]}');
  assert.equal(stripUsage('{"choices":[{"delta":{"content":"\\"usage\\":null}"}}],"usage":null}'), '{"choices":[{"delta":{"content":"\\"usage\\":null}"}}]}');
});

test('a one-line event and the same event with other fields are rewritten alike', () => {
  const upper = (d: string) => d.toUpperCase();
  const run = (text: string) => new SseRewriter(upper).push(Buffer.from(text));
  assert.equal(run('data: {"a":1}\n\ndata:{"b":2}\n\n'), 'data: {"A":1}\n\ndata: {"B":2}\n\n');
  assert.equal(run('event: x\ndata: {"a":1}\n\n'), 'event: x\ndata: {"A":1}\n\n');
  // A rewrite into two lines (or events), each event rewritten once (a policy's rewrite may keep state across events).
  const calls: string[] = [];
  assert.equal(new SseRewriter((d) => (calls.push(d), `${d}\n${d}`)).push(Buffer.from('data: a\n\n')), 'data: a\ndata: a\n\n');
  assert.equal(new SseRewriter((d) => (calls.push(d), [d, d])).push(Buffer.from('data: b\n\n')), 'data: b\n\ndata: b\n\n');
  assert.deepEqual(calls, ['a', 'b']);
});

test('an event longer than the rewriter holds passes on as it is, as it arrives; the events after it are rewritten again', () => {
  const seen: string[] = [];
  const rewriter = new SseRewriter((d) => (seen.push(d), d === UNREAD_EVENT ? d : 'REWRITTEN'));
  const piece = Buffer.from('a'.repeat(1024 * 1024));
  let out = rewriter.push(Buffer.from('data: '));
  // 6 MiB without a blank line: before, all of it was held (a 300 MiB line took a gateway to 1.3 GB).
  for (let i = 0; i < 6; i++) out += rewriter.push(piece);
  assert.ok(out.length >= 4 * 1024 * 1024, `passed on before the event ended (${out.length} characters)`);
  out += rewriter.push(Buffer.from('\n'));
  out += rewriter.push(Buffer.from('\ndata: small\n\n'));
  out += rewriter.end();
  assert.equal(out, `data: ${'a'.repeat(6 * 1024 * 1024)}\n\ndata: REWRITTEN\n\n`);
  assert.deepEqual(seen, [UNREAD_EVENT, 'small'], 'the rewrite is told of the event it did not read');
});

test('a rewrite that gives something else for an unread event has it sent instead, and the event dropped', () => {
  // Before: the event went on unread, whatever the flows (a sanitizer) would have said of it.
  const big = `{"t":"${'s'.repeat(MAX_HELD_EVENT + 200_000)}"}`;
  for (const size of [1000, 64 * 1024]) {
    const rewriter = new SseRewriter((d) => (d === UNREAD_EVENT ? ['{"type":"error"}'] : d));
    const out = run(rewriter, `event: response.completed\nid: 7\ndata: ${big}\n\nevent: response.done\ndata: {"after":1}\n\n`, size);
    assert.equal(out, 'event: error\nid: 7\ndata: {"type":"error"}\n\nevent: response.done\ndata: {"after":1}\n\n', `chunks of ${size}`);
  }
  const dropped = new SseRewriter((d) => (d === UNREAD_EVENT ? null : d));
  assert.equal(run(dropped, `data: ${big}\n\ndata: next\n\n`, 4096), 'data: next\n\n');
});

test('a rewrite that returns several payloads sends several events, each named for its type when the stream names events', () => {
  const rewriter = new SseRewriter((data) => (data.includes('.done') ? [JSON.stringify({ type: 'response.output_text.delta', delta: 'tail' }), data] : data));
  const done = JSON.stringify({ type: 'response.output_text.done', text: 'all' });
  const out = run(rewriter, `event: response.output_text.done\ndata: ${done}\n\ndata: plain\n\n`, 7);
  assert.equal(out, `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"tail"}\n\nevent: response.output_text.done\ndata: ${done}\n\ndata: plain\n\n`);
});

test('with usage stripped for the client, the policies still see the usage chunk first (a cache stores it)', () => {
  const seen: string[] = [];
  const rewrite = withUsageStripped((d) => (seen.push(d), d), true)!;
  const usage = '{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}';
  assert.equal(rewrite(usage), null, 'the client does not get it');
  assert.equal(rewrite('{"choices":[{"delta":{"content":"a"}}],"usage":null}'), '{"choices":[{"delta":{"content":"a"}}]}');
  // Before: the policies got the stream already stripped, so a cached stream replayed without usage.
  assert.deepEqual(seen, [usage, '{"choices":[{"delta":{"content":"a"}}],"usage":null}']);
  assert.deepEqual(withUsageStripped(() => ['{"a":1,"usage":null}', usage], true)!('x'), ['{"a":1}']);
});

test('the last event without its closing blank line goes through the rewrite too; unchanged, it goes as it came', () => {
  // Before: end() passed it on as it was, unread by every rewrite (a sanitizer's too).
  const seen: string[] = [];
  const r = new SseRewriter((d) => {
    seen.push(d);
    return d === 'secret' ? 'REDACTED' : d;
  });
  assert.equal(r.push(Buffer.from('data: a\n\nevent: x\ndata: secret\n')), 'data: a\n\n');
  assert.equal(r.end(), 'event: x\ndata: REDACTED\n\n');
  assert.deepEqual(seen, ['a', 'secret']);
  const kept = new SseRewriter((d) => d);
  kept.push(Buffer.from('data: a'));
  assert.equal(kept.end(), 'data: a', 'byte for byte');
  const dropped = new SseRewriter(() => null);
  dropped.push(Buffer.from('data: a\n'));
  assert.equal(dropped.end(), '');
});

test("what a rewrite still holds at a stream's end goes out as its last events, after a last event without its blank line", () => {
  const held = () => ['{"choices":[{"delta":{"content":"held"}}],"usage":null}'];
  for (const [stream, expected] of [
    ['data: a\n\n', 'data: a\n\ndata: {"choices":[{"delta":{"content":"held"}}],"usage":null}\n\n'],
    ['data: a\n\ndata: b', 'data: a\n\ndata: b\n\ndata: {"choices":[{"delta":{"content":"held"}}],"usage":null}\n\n'],
    ['data: a\n\ndata: b\n', 'data: a\n\ndata: b\n\ndata: {"choices":[{"delta":{"content":"held"}}],"usage":null}\n\n'],
  ] as const) {
    // Before: the rewriter had no end step: a stream that ended without the event that releases held text lost it.
    assert.equal(run(new SseRewriter((d) => d, held), stream, 3), expected, stream);
  }
  assert.equal(run(new SseRewriter((d) => d, () => []), 'data: a', 3), 'data: a', 'nothing held: byte for byte');
  // Tollgate's usage stripping applies to them as to every event.
  const stripped = eventsAtEnd({ event: (d) => d, eventsAtEnd: held }, true)!;
  assert.deepEqual(stripped(), ['{"choices":[{"delta":{"content":"held"}}]}']);
  assert.equal(eventsAtEnd({ event: (d) => d }, true), undefined);
});

test('a stream that stops inside an event is cut short when the event\'s data is neither whole JSON nor [DONE]', () => {
  // An event begun before its data (a responses-API `event:` line, an `id:`, a field name cut in two, a bare `data`) is cut short too.
  for (const rest of ['data: {"id":"c1","object":"cha', 'event: x\ndata: {"a":\n', 'data: [DON', 'event: response.completed\n', 'id: 7\r\n', 'dat', 'eve', 'data', 'event: x\ndata\n', ': ping\nevent: x']) assert.equal(isCutShort(rest), true, rest);
  for (const rest of ['', '\n', '\r\n', ': ping', ': ping\n: pong\n', 'data: [DONE]', 'data: {"a":1}\n', 'event: x\ndata: {"a":1}\n', 'data: {"a":\r\ndata: 1}\r', 'retry: 1000', 'retry: 1000\n', 'x-vendor: 1', 'ret']) assert.equal(isCutShort(rest), false, rest);
  const r = new SseRewriter((d) => d);
  r.push(Buffer.from('data: {"a":1}\n\ndata: {"b"'));
  assert.equal(r.cutShort(), true);
  r.push(Buffer.from(':2}'));
  assert.equal(r.cutShort(), false);
});
