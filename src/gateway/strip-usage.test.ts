import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageEventStripper } from './strip-usage.js';

const STREAM =
  'data: {"choices":[{"delta":{"content":"añ€😀"}}]}\n\n' +
  'data: {"choices":[{"delta":{"content":"b"}}],"usage":null}\n\n' +
  'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n' +
  'data: [DONE]\n\n';

test('the usage-only event is dropped wherever the stream is split', () => {
  const expected = STREAM.replace('data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n', '').replace(',"usage":null', '');
  for (let size = 1; size <= Buffer.byteLength(STREAM); size++) {
    const s = new UsageEventStripper();
    let out = '';
    const bytes = Buffer.from(STREAM);
    for (let i = 0; i < bytes.length; i += size) out += s.push(bytes.subarray(i, i + size));
    out += s.end();
    assert.equal(out, expected, `split every ${size} bytes`);
  }
});
