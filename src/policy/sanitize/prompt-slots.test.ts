import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OpenAIBody } from '../../gateway/openai-request.js';
import { promptSlots, type PromptSlots } from './prompt-slots.js';

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
const texts = (roles: string[]) => promptSlots({ model: 'm', messages: structuredClone(MESSAGES) } as unknown as OpenAIBody, new Set(roles)).texts.map((t) => t.parts[0].text);

test('a role the API does not define counts as user: naming one of its own does not pass a client text unchecked', () => {
  assert.deepEqual(texts(['user']), ['user text', 'capitalised user text', 'spaced user text', 'made-up role text', 'no role text']);
});

test('the roles the API defines are checked only when listed; a listed custom role is its own', () => {
  assert.deepEqual(texts(['system', 'tool']), ['system text', 'tool text']);
  assert.deepEqual(texts(['human']), ['made-up role text']);
});

const slots = (body: Record<string, unknown>, roles = ['user', 'tool']) => promptSlots(body as OpenAIBody, new Set(roles));
/** Each text as its parts, a URL marked. */
const shape = (p: PromptSlots) => p.texts.map((t) => (t.url ? { url: t.parts[0].text } : t.parts.map((s) => s.text)));

test('the shapes a prompt comes in: each text with its parts, the URLs parts point at, token ids', () => {
  const table: [string, Record<string, unknown>, ReturnType<typeof shape>, PromptSlots['unreadable']?][] = [
    // The model reads a message's text parts joined: judged apart, a phrase split across two passed.
    ['text parts are one text', { messages: [{ role: 'user', content: [{ type: 'text', text: 'about project' }, { type: 'text', text: 'falcon' }] }] }, [['about project', 'falcon']]],
    [
      'image, audio and file parts give their URL; inline data is not fetched',
      {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'look' },
              { type: 'image_url', image_url: { url: 'http://bad.example/x.png' } },
              { type: 'audio_url', audio_url: { url: 'https://a.example/a.wav' } },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
            ],
          },
        ],
      },
      [{ url: 'http://bad.example/x.png' }, { url: 'https://a.example/a.wav' }, ['look']],
    ],
    [
      'vLLM\'s short media parts without a type give their URL, and a part holding two URLs gives both',
      {
        messages: [
          {
            role: 'user',
            content: [
              { image_url: 'https://i.example/1.png' },
              { audio_url: 'https://a.example/1.wav' },
              { video_url: { url: 'https://v.example/1.mp4' } },
              { input_audio: { data: 'AAAA', format: 'wav' } },
              { type: 'input_image', url: 'https://good.example/', image_url: 'https://bad.example/' },
            ],
          },
        ],
      },
      [{ url: 'https://i.example/1.png' }, { url: 'https://a.example/1.wav' }, { url: 'https://v.example/1.mp4' }, { url: 'https://good.example/' }, { url: 'https://bad.example/' }],
    ],
    [
      'the responses API: input_image and input_file URLs, a tool result\'s parts',
      {
        input: [
          { role: 'user', content: [{ type: 'input_text', text: 'see' }, { type: 'input_image', image_url: 'https://i.example/1.png' }, { type: 'input_file', file_url: 'https://f.example/1.pdf' }] },
          { type: 'function_call_output', call_id: 'c1', output: [{ type: 'input_text', text: 'tool' }, { type: 'input_text', text: 'says' }] },
        ],
      },
      [{ url: 'https://i.example/1.png' }, { url: 'https://f.example/1.pdf' }, ['see'], ['tool', 'says']],
    ],
    ['a tool result\'s parts only when the tool role is checked', { input: [{ type: 'function_call_output', call_id: 'c1', output: [{ type: 'input_text', text: 'x' }] }] }, []],
    ['the completions suffix', { prompt: 'Complete:', suffix: 'the rest' }, [['Complete:'], ['the rest']]],
    ['token ids', { prompt: [1, 2, 3] }, [], 'token ids'],
    ['lists of token ids', { input: [[1, 2], [3]] }, [], 'token ids'],
    ['vLLM prompt embeddings, alone or beside a text prompt', { prompt: 'hi', prompt_embeds: 'AAAA' }, [['hi']], 'embeddings'],
    ['no input', { input: [] }, []],
  ];
  for (const [name, body, expected, unreadable] of table) {
    const roles = name.includes('only when') ? ['user'] : ['user', 'tool'];
    const p = slots(structuredClone(body), roles);
    assert.deepEqual(shape(p), expected, name);
    assert.equal(p.unreadable, unreadable, name);
  }
});

test('a slot writes back where it was read', () => {
  const body = { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'image_url', image_url: { url: 'http://x.example/' } }] }], suffix: 's' };
  const p = slots(body);
  for (const t of p.texts) for (const part of t.parts) part.set(`${part.text}!`);
  assert.deepEqual(body, { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'a!' }, { type: 'image_url', image_url: { url: 'http://x.example/!' } }] }], suffix: 's!' });
});
