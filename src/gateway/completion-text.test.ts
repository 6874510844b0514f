import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CompletionText, MAX_LOGGED_TEXT } from './completion-text.js';
import { UsageScanner } from './usage.js';

function ofJson(answer: unknown): string {
  const t = new CompletionText();
  const s = new UsageScanner('application/json', t);
  s.push(Buffer.from(JSON.stringify(answer)));
  s.end();
  return t.text;
}

test('the text of whole answers: chat, completions, responses; none for embeddings or error pages', () => {
  assert.equal(ofJson({ choices: [{ message: { role: 'assistant', content: 'Hello there' } }] }), 'Hello there');
  assert.equal(ofJson({ choices: [{ text: 'def f():' }] }), 'def f():');
  assert.equal(ofJson({ output: [{ type: 'message', content: [{ type: 'output_text', text: 'Paris' }, { type: 'refusal', refusal: 'no' }] }] }), 'Paris');
  assert.equal(ofJson({ data: [{ embedding: [0.1, 0.2] }] }), '');
  const t = new CompletionText();
  t.addAnswer(Buffer.from('<html>502</html>'));
  assert.equal(t.text, '');
});

test('the text of streams, split at every byte: chat deltas and Responses API delta events', () => {
  const stream =
    'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\ndata: {"choices":[{"delta":{"content":"Hel"}}]}\n\n' +
    'data: {"choices":[{"delta":{"content":"lo"}}],"usage":null}\n\ndata: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\ndata: [DONE]\n\n';
  const t = new CompletionText();
  const s = new UsageScanner('text/event-stream', t);
  for (const ch of Buffer.from(stream)) s.push(Buffer.from([ch]));
  assert.deepEqual(s.end(), { inputTokens: 1, outputTokens: 2, cachedTokens: 0 }, 'usage is still read');
  assert.equal(t.text, 'Hello');

  const r = new CompletionText();
  const rs = new UsageScanner('text/event-stream', r);
  rs.push(Buffer.from('event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Pa"}\n\n'));
  rs.push(Buffer.from('event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"ris"}\n\nevent: response.completed\ndata: {"type":"response.completed","response":{"output":[]}}\n\n'));
  rs.end();
  assert.equal(r.text, 'Paris');
});

test('long answers are cut at MAX_LOGGED_TEXT and marked', () => {
  const t = new CompletionText();
  for (let i = 0; i < 100; i++) t.addEvent(JSON.stringify({ choices: [{ delta: { content: 'x'.repeat(1000) } }] }));
  assert.equal(t.text, 'x'.repeat(MAX_LOGGED_TEXT) + '…[truncated]');
});

test('JSON that is no object (null, a number, a string) has no text, whole or streamed, and the usage after it is read', () => {
  for (const answer of [null, 3, 'text']) assert.equal(ofJson(answer), '', JSON.stringify(answer));
  const t = new CompletionText();
  const s = new UsageScanner('text/event-stream', t);
  // Before: "Cannot read properties of null (reading 'choices')", thrown inside the proxy: a 502 or a cut stream.
  s.push(Buffer.from('data: null\n\ndata: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: 7\n\n'));
  s.push(Buffer.from('data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\ndata: [DONE]\n\n'));
  assert.deepEqual(s.end(), { inputTokens: 1, outputTokens: 2, cachedTokens: 0 });
  assert.equal(t.text, 'hi');
});
