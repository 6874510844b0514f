import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OpenAIBody } from '../../gateway/openai-request.js';
import { promptSlots } from './prompt-slots.js';

const MESSAGES = [
  { role: 'system', content: 'system text' },
  { role: 'developer', content: 'developer text' },
  { role: 'assistant', content: 'assistant text' },
  { role: 'tool', content: 'tool text' },
  { role: 'user', content: 'user text' },
  { role: 'User', content: 'capitalised user text' },
  { role: 'user ', content: 'spaced user text' },
  { role: 'human', content: 'made-up role text' },
  { content: 'no role text' },
];
const texts = (roles: string[]) => promptSlots({ model: 'm', messages: structuredClone(MESSAGES) } as unknown as OpenAIBody, new Set(roles)).map((s) => s.text);

test('a role the API does not define counts as user: naming one of its own does not pass a client text unchecked', () => {
  assert.deepEqual(texts(['user']), ['user text', 'capitalised user text', 'spaced user text', 'made-up role text', 'no role text']);
});

test('the roles the API defines are checked only when listed; a listed custom role is its own', () => {
  assert.deepEqual(texts(['system', 'tool']), ['system text', 'tool text']);
  assert.deepEqual(texts(['human']), ['made-up role text']);
});
