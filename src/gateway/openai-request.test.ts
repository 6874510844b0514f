import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError } from './errors.js';
import { parseOpenAIBody } from './openai-request.js';
import { MAX_JSON_DEPTH } from '../lib/json-depth.js';

function nested(depth: number, inner = ''): string {
  return '['.repeat(depth) + inner + ']'.repeat(depth);
}

function refusal(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof GatewayError, String(err));
    return err;
  }
  assert.fail('the body was accepted');
}

test('a body nested deeper than the limit is a 400, before any stage recurses over it', () => {
  // 100k levels: JSON.parse takes it, JSON.stringify of it (the picker's prompt of a Responses input) overflows the stack.
  const deep = Buffer.from(`{"model":"m","input":${nested(100_000)}}`);
  const err = refusal(() => parseOpenAIBody(deep, 'responses'));
  assert.deepEqual([err.status, err.code], [400, 'invalid_request']);
  assert.match(err.message, /512 levels/);
  // Anywhere in the body, not only in the fields tollgate reads.
  const extra = Buffer.from(`{"model":"m","messages":[{"role":"user","content":"x"}],"tools":${nested(MAX_JSON_DEPTH)}}`);
  assert.equal(refusal(() => parseOpenAIBody(extra, 'chat.completions')).code, 'invalid_request');
});

test('nesting up to the limit passes, and brackets inside strings do not count', () => {
  // The body object is level 1, so the array can take every level but that one.
  const atLimit = Buffer.from(`{"model":"m","input":${nested(MAX_JSON_DEPTH - 1)}}`);
  assert.equal(parseOpenAIBody(atLimit, 'responses').model, 'm');
  const brackets = JSON.stringify({ model: 'm', input: `${'['.repeat(5000)}\\"{{{`, messages: [{ role: 'user', content: '"[[[\\' }] });
  assert.equal(parseOpenAIBody(Buffer.from(brackets), 'responses').model, 'm');
  // Many brackets but shallow (a long conversation, a large tool list): scanned, and let through.
  const wide = JSON.stringify({ model: 'm', messages: Array.from({ length: 2000 }, () => ({ role: 'user', content: [{ type: 'text', text: 'x' }] })) });
  assert.equal(parseOpenAIBody(Buffer.from(wide), 'chat.completions').model, 'm');
});

test('optional fields sent as null are taken as absent (as OpenAI and vLLM do; the Python SDK sends None so), wrong types still refused', () => {
  const body = (fields: object) => Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...fields }));
  parseOpenAIBody(body({ stream: null, max_tokens: null, max_completion_tokens: null, stream_options: { include_usage: null } }), 'chat.completions');
  parseOpenAIBody(body({ stream_options: null }), 'chat.completions');
  parseOpenAIBody(Buffer.from(JSON.stringify({ model: 'm', input: 'hi', max_output_tokens: null, stream: null })), 'responses');
  assert.match(refusal(() => parseOpenAIBody(body({ stream: 'yes' }), 'chat.completions')).message, /stream/);
  assert.match(refusal(() => parseOpenAIBody(body({ max_tokens: -1 }), 'chat.completions')).message, /max_tokens/);
});

test('n and best_of, which token quotas multiply the output cap by, must be positive integers', () => {
  const chat = (fields: object) => Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...fields }));
  const completions = (fields: object) => Buffer.from(JSON.stringify({ model: 'm', prompt: 'hi', ...fields }));
  parseOpenAIBody(chat({ n: 2 }), 'chat.completions');
  parseOpenAIBody(completions({ n: null, best_of: 3 }), 'completions');
  // "8" counted as one choice while a server coercing it made eight.
  assert.match(refusal(() => parseOpenAIBody(chat({ n: '8' }), 'chat.completions')).message, /\bn\b/);
  assert.match(refusal(() => parseOpenAIBody(chat({ n: 0 }), 'chat.completions')).message, /\bn\b/);
  assert.match(refusal(() => parseOpenAIBody(completions({ best_of: 1.5 }), 'completions')).message, /best_of/);
});

test('requests vLLM takes without a prompt tollgate reads pass: prompt_embeds alone, prompt null, embeddings of messages', () => {
  const parse = (body: unknown, op: Parameters<typeof parseOpenAIBody>[1]) => parseOpenAIBody(Buffer.from(JSON.stringify(body)), op);
  assert.equal(parse({ model: 'm', prompt_embeds: 'AAAA' }, 'completions').prompt, undefined);
  assert.equal(parse({ model: 'm', prompt: null }, 'completions').prompt, null);
  assert.equal(parse({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }, 'embeddings').input, undefined);
  // What tollgate reads is still checked.
  assert.throws(() => parse({ model: 'm', prompt: 5 }, 'completions'), /prompt/);
  assert.throws(() => parse({ model: 'm', messages: 'hi' }, 'embeddings'), /messages/);
});

test('a body that starts with a UTF-8 byte order mark is read as vLLM reads it', () => {
  const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }))]);
  assert.equal(parseOpenAIBody(body, 'chat.completions').model, 'm');
});
