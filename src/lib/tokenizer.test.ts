import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countTokens, encode } from 'gpt-tokenizer';
import { countChatTokens, countTextTokens, decodeTokens, encodeText, loadTokenizer, MAX_RUN, MERGE_CACHE_ENTRIES, serializeMessages, tokenizerPieces, type ChatMessage } from './tokenizer.js';

test('counting message by message gives the count of the whole serialized prompt', () => {
  const cases: ChatMessage[][] = [
    [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: 'Hello!' }],
    [{ role: 'user', content: 'ends with spaces   ' }, { role: 'assistant', content: ' starts with a space' }],
    [{ role: 'user', content: 'two\n\nnewlines\n' }, { role: 'user', content: '\nleading newline' }, { role: 'user', content: '' }],
    [{ role: 'user', content: [{ type: 'text', text: 'part one ' }, { type: 'image_url' }, { type: 'text', text: 'part two' }] }, { role: 'tool', content: null }],
    [{ role: 'user', content: 'ünïcödé 漢字 🙂\t\t' }, { role: 'assistant', content: '1234567890 ,.;' }],
    [{ role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] }, { role: 'tool', content: '{"temp":21}' }],
  ];
  for (const messages of cases) {
    assert.equal(countChatTokens(messages), countTokens(serializeMessages(messages)) + 3 * messages.length, JSON.stringify(messages));
    // A second time (from the cache) the same.
    assert.equal(countChatTokens(messages), countTokens(serializeMessages(messages)) + 3 * messages.length);
  }
});

/** The longest run of spaces, or of anything else, in `text`. */
function longestRun(text: string): number {
  let longest = 0;
  for (const m of text.matchAll(/\s+|\S+/gu)) longest = Math.max(longest, m[0].length);
  return longest;
}

test('tokenizer pieces: long runs (CJK prose, a 1 MB "word", spaces) are cut to MAX_RUN, nothing is lost, ordinary text stays whole', () => {
  const ordinary = 'The quick brown fox jumps over the lazy dog. '.repeat(200);
  assert.deepEqual(tokenizerPieces(ordinary), [ordinary]);
  for (const text of ['漢'.repeat(20_000), 'a'.repeat(1_000_000), 'x' + ' '.repeat(100_000) + 'y', `intro ${'ab'.repeat(50_000)} outro`]) {
    const pieces = tokenizerPieces(text);
    assert.equal(pieces.join(''), text);
    assert.ok(pieces.length > 1);
    for (const piece of pieces) assert.ok(longestRun(piece) <= MAX_RUN + 1, `a piece holds a run of ${longestRun(piece)}`);
  }
});

test('tokenizer pieces: a cut never separates the halves of a surrogate pair', () => {
  for (const lead of ['', 'a', 'ab']) {
    const text = lead + '🙂'.repeat(1000);
    for (const piece of tokenizerPieces(text)) {
      assert.ok(!/^[\uDC00-\uDFFF]/.test(piece) && !/[\uD800-\uDBFF]$/.test(piece), 'a lone surrogate at a cut');
    }
  }
});

test('token counts over long runs: the count, the encoding and the chat accounting agree, and ordinary text counts as gpt-tokenizer does', () => {
  const cjk = '我们在这里讨论路由和配额'.repeat(2000);
  assert.equal(countTextTokens(cjk), encodeText(cjk).length);
  const ordinary = 'The quick brown fox jumps over the lazy dog. '.repeat(200);
  assert.equal(countTextTokens(ordinary), countTokens(ordinary));
  assert.deepEqual(encodeText(ordinary), encode(ordinary));
  // Within a token per cut of the uncut count, for text the uncut tokenizer can still do in reasonable time.
  const word = 'a'.repeat(4000);
  assert.ok(Math.abs(countTextTokens(word) - countTokens(word)) <= tokenizerPieces(word).length);
  // What the simulator reports (encode the whole serialization) is what the gateway estimates (message by message).
  const messages: ChatMessage[] = [{ role: 'system', content: cjk }, { role: 'user', content: `see ${'z'.repeat(3000)}   ` }, { role: 'user', content: ' '.repeat(700) }];
  assert.equal(countChatTokens(messages), encodeText(serializeMessages(messages)).length + 3 * messages.length);
});

test('a special token spelled in client text counts as text, never throws', () => {
  for (const text of ['say <|endoftext|> now', '<|im_start|>system<|im_end|>', 'x'.repeat(300) + '<|endofprompt|>']) {
    const tokens = encodeText(text);
    assert.ok(tokens.length > 1, text);
    assert.equal(decodeTokens(tokens), text);
    assert.equal(countTextTokens(text), tokens.length);
    assert.equal(countTextTokens(text, 2), 3, 'over a budget of 2');
  }
});

test("an assistant message's tool calls count as the server renders them; malformed ones never throw", () => {
  const args = JSON.stringify({ query: 'a long argument '.repeat(50) });
  const withCalls: ChatMessage = { role: 'assistant', content: null, tool_calls: [{ function: { name: 'search', arguments: args } }] };
  assert.ok(countChatTokens([withCalls]) > countChatTokens([{ role: 'assistant', content: null }]) + 100);
  assert.match(serializeMessages([withCalls]), /^assistant: {2}search\(\{"query":"a long argument /);
  for (const tool_calls of [null, 'x', [null], [{ function: null }], [{ function: { name: 5, arguments: {} } }]]) {
    assert.doesNotThrow(() => countChatTokens([{ role: 'assistant', content: 'hi', tool_calls }]), JSON.stringify(tool_calls));
  }
});

test("gpt-tokenizer's own cache of merged words stays bounded, however many distinct words clients send", () => {
  // Random runs of CJK ideographs: words no vocabulary holds, each merged and (by default) remembered for good.
  let seed = 7;
  const ideograph = () => String.fromCharCode(0x4e00 + ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % 20_000));
  const words = Array.from({ length: MERGE_CACHE_ENTRIES + 2000 }, () => Array.from({ length: 12 }, ideograph).join(''));
  countTextTokens(words.join(' '));
  const encoding = (loadTokenizer() as unknown as { default: { bytePairEncodingCoreProcessor: { mergeCache?: Map<string, unknown> } } }).default;
  const cached = encoding.bytePairEncodingCoreProcessor.mergeCache?.size ?? 0;
  // Before: every word stayed (up to 100,000 of them, ~480 MB of token arrays for words of MAX_RUN characters).
  assert.ok(cached <= MERGE_CACHE_ENTRIES, `${cached} merged words kept`);
  assert.ok(cached > 0, 'the cache is still used');
});
