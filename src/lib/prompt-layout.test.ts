import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promptLayout, toolsLayout } from './prompt-layout.js';
import type { ChatMessage } from './tokenizer.js';

/** How many leading characters two layouts share. */
function shared(a: string, b: string): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

const tool = (name: string) => ({ type: 'function', function: { name, parameters: { type: 'object' } } });

test('the tool definitions lead the layout, before the messages', () => {
  const tools = [tool('search'), tool('book')];
  const layout = promptLayout([{ role: 'user', content: 'hi' }], tools);
  assert.ok(layout.startsWith(toolsLayout(tools)));
  assert.ok(toolsLayout(tools).includes(JSON.stringify(tools)));
  assert.equal(toolsLayout([]), '');
  assert.equal(toolsLayout(undefined), '');
  // The same tools before different questions share all of the tools.
  const other = promptLayout([{ role: 'user', content: 'bye' }], tools);
  assert.ok(shared(layout, other) >= toolsLayout(tools).length);
  // Other tools before the same question share no more than the JSON both open with.
  assert.ok(shared(layout, promptLayout([{ role: 'user', content: 'hi' }], [tool('weather')])) < toolsLayout(tools).length / 2);
});

test('where a message ends is part of the layout; messages that open alike still share that', () => {
  const one: ChatMessage[] = [{ role: 'system', content: 'S\nuser: hi' }];
  const two: ChatMessage[] = [
    { role: 'system', content: 'S' },
    { role: 'user', content: 'hi' },
  ];
  assert.notEqual(promptLayout(one), promptLayout(two));
  const document = 'a long shared document '.repeat(10);
  const a = promptLayout([{ role: 'user', content: `${document}first question` }]);
  const b = promptLayout([{ role: 'user', content: `${document}second` }]);
  assert.ok(shared(a, b) >= document.length);
  // A conversation that goes on keeps its earlier turns' layout as its prefix.
  assert.ok(promptLayout([...two, { role: 'assistant', content: 'hello' }]).startsWith(promptLayout(two)));
});

test('text parts read as the equal string; other parts by their content', () => {
  const parts = (url: string): ChatMessage[] => [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'what is this?' }] as ChatMessage['content'] }];
  assert.equal(promptLayout([{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }]), promptLayout([{ role: 'user', content: 'ab' }]));
  assert.equal(promptLayout(parts('https://x/a.png')), promptLayout(parts('https://x/a.png')));
  assert.notEqual(promptLayout(parts('https://x/a.png')), promptLayout(parts('https://x/b.png')));
  assert.notEqual(promptLayout(parts('https://x/a.png')), promptLayout([{ role: 'user', content: 'what is this?' }]));
});

test("an assistant message's tool calls are part of it", () => {
  const call = (args: string): ChatMessage => ({ role: 'assistant', content: null, tool_calls: [{ type: 'function', function: { name: 'search', arguments: args } }] });
  assert.notEqual(promptLayout([call('{"q":"a"}')]), promptLayout([call('{"q":"b"}')]));
});

test('laid out for a reader of some characters only, the layout is the same up to there and as long', () => {
  const image = (n: number) => ({ type: 'image_url', image_url: { url: `data:image/png;base64,${String(n).repeat(5000)}` } });
  const messages: ChatMessage[] = [
    { role: 'system', content: 'You are a careful assistant.' },
    { role: 'user', content: [{ type: 'text', text: 'compare these' }, image(1), image(2), { type: 'text', text: 'and this one' }, image(3)] as ChatMessage['content'] },
  ];
  const whole = promptLayout(messages, [tool('look')]);
  // The digests start past 140 characters: none read, some, all.
  for (const readChars of [0, 40, 140, 160, 180, 200, whole.length]) {
    const read = promptLayout(messages, [tool('look')], readChars);
    assert.equal(read.length, whole.length, `${readChars}`);
    assert.equal(read.slice(0, readChars), whole.slice(0, readChars), `${readChars}`);
  }
});
