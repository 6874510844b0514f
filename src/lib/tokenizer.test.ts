import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countTokens } from 'gpt-tokenizer';
import { countChatTokens, serializeMessages, type ChatMessage } from './tokenizer.js';

test('counting message by message gives the count of the whole serialized prompt', () => {
  const cases: ChatMessage[][] = [
    [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: 'Hello!' }],
    [{ role: 'user', content: 'ends with spaces   ' }, { role: 'assistant', content: ' starts with a space' }],
    [{ role: 'user', content: 'two\n\nnewlines\n' }, { role: 'user', content: '\nleading newline' }, { role: 'user', content: '' }],
    [{ role: 'user', content: [{ type: 'text', text: 'part one ' }, { type: 'image_url' }, { type: 'text', text: 'part two' }] }, { role: 'tool', content: null }],
    [{ role: 'user', content: 'ünïcödé 漢字 🙂\t\t' }, { role: 'assistant', content: '1234567890 ,.;' }],
  ];
  for (const messages of cases) {
    assert.equal(countChatTokens(messages), countTokens(serializeMessages(messages)) + 3 * messages.length, JSON.stringify(messages));
    // A second time (from the cache) the same.
    assert.equal(countChatTokens(messages), countTokens(serializeMessages(messages)) + 3 * messages.length);
  }
});
