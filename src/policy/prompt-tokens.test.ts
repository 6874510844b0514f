import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countChatTokens } from '../lib/tokenizer.js';
import { promptTokens } from './prompt-tokens.js';
import { fakeContext } from './testing.js';

test('a responses input item whose role is no string is counted as a message without one, not a 500', () => {
  // Written out with its role, `{"toString":1}` threw "Cannot convert object to primitive value".
  for (const role of [{ toString: 1 }, [{ toString: 1 }], { toString: 'x', valueOf: 1 }, 7, null]) {
    const ctx = fakeContext({ operation: 'responses', body: { messages: undefined, input: [{ role, content: 'hi there' }] } });
    assert.equal(promptTokens(ctx, {}), countChatTokens([{ role: '', content: 'hi there' }]), JSON.stringify(role));
  }
  const ctx = fakeContext({ operation: 'responses', body: { messages: undefined, input: [{ role: 'user', content: 'hi there' }] } });
  assert.equal(promptTokens(ctx, {}), countChatTokens([{ role: 'user', content: 'hi there' }]));
});
