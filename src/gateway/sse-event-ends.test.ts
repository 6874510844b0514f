import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEnds } from './sse-event-ends.js';

/** Where events end in `stream` fed in pieces of `size` bytes: the stream offsets past each piece's last event end. */
function endsIn(stream: string, size: number): number[] {
  const bytes = Buffer.from(stream);
  const ends = new EventEnds();
  const out: number[] = [];
  for (let at = 0; at < bytes.length; at += size) {
    const last = ends.last(bytes.subarray(at, at + size));
    if (last > 0) out.push(at + last);
  }
  return out;
}

for (const [name, stream, expected] of [
  ['LF lines', 'data: a\n\ndata: b\n\n', [9, 18]],
  ['CRLF lines', 'data: a\r\n\r\ndata: b\r\n\r\n', [11, 22]],
  ['CR lines', 'data: a\r\rdata: b\r\r', [9, 18]],
  // Before: none of these was an event end, and the stream was held until it ended.
  ['an LF line, then a CR blank line', 'data: a\n\rdata: b\n\r', [9, 18]],
  ['a CRLF line, then a CR blank line', 'data: a\r\n\rdata: b\r\n\r', [10, 20]],
  ['an LF line, then a CRLF blank line', 'data: a\n\r\ndata: b\n\r\n', [10, 20]],
  ['several lines', 'event: x\nid: 1\r\ndata: a\r\ndata: b\n\n', [34]],
  ['an event cut short', 'data: a\n\ndata: b\n', [9]],
  ['a CRLF that is one line end', 'data: a\r\ndata: b\r\n', []],
] as const) {
  test(`event ends: ${name}, however the bytes are split`, () => {
    const whole = endsIn(stream, stream.length);
    assert.deepEqual(whole, expected.length === 0 ? [] : [expected.at(-1)]);
    for (let size = 1; size <= 4; size++) {
      const pieces = endsIn(stream, size);
      // Split, each event end is found in the piece that completes it; with a CRLF, the one that brings its LF too.
      for (const end of expected) assert.ok(pieces.includes(end) || pieces.includes(end - 1), `size ${size}: ${pieces} lacks ${end}`);
      assert.equal(pieces.at(-1) ?? 0, expected.at(-1) ?? 0, `size ${size}`);
    }
  });
}
