import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generatedText } from './answer-text.js';

const text = (answer: unknown) => generatedText(Buffer.from(JSON.stringify(answer)));

test('chat: every choice, with its reasoning, refusal and tool calls (as the prompt counts them)', () => {
  const answer = {
    object: 'chat.completion',
    choices: [
      { index: 0, message: { role: 'assistant', content: 'Hello', reasoning_content: ' think', tool_calls: [{ type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] } },
      { index: 1, message: { role: 'assistant', content: [{ type: 'text', text: ' parts' }], refusal: ' no' } },
      null,
    ],
  };
  assert.equal(text(answer), 'Hello think f({"a":1}) parts no');
});

test('completions: each choice’s text', () => {
  assert.equal(text({ object: 'text_completion', choices: [{ text: 'one' }, { text: ' two' }] }), 'one two');
});

test('Responses: message, reasoning and function-call items of an answer that is over', () => {
  const answer = {
    object: 'response',
    status: 'completed',
    output: [
      { type: 'reasoning', summary: [{ type: 'summary_text', text: 'why ' }], content: [{ type: 'reasoning_text', text: 'because ' }] },
      { type: 'message', content: [{ type: 'output_text', text: 'Paris' }, { type: 'refusal', refusal: '!' }] },
      { type: 'function_call', name: 'lookup', arguments: '{}' },
    ],
  };
  assert.equal(text(answer), 'because why Paris!lookup({})');
  assert.equal(text({ ...answer, status: 'incomplete' }), 'because why Paris!lookup({})');
});

test('a Responses answer that is not over (a background creation) has no text yet: it is not estimated', () => {
  assert.equal(text({ object: 'response', status: 'queued', output: [] }), undefined);
  assert.equal(text({ object: 'response', status: 'in_progress', output: [] }), undefined);
});

test('what is no such answer has no text: not JSON, null, an error body, an embeddings list', () => {
  assert.equal(generatedText(Buffer.from('<html>')), undefined);
  assert.equal(text(null), undefined);
  assert.equal(text({ error: { message: 'x' } }), undefined);
  assert.equal(text({ object: 'list', data: [{ embedding: [0.1] }] }), undefined);
  // An empty answer is one: it generated nothing.
  assert.equal(text({ choices: [{ message: { role: 'assistant', content: '' } }] }), '');
});
