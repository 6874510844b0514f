// SanitizeModelResponse: whole answers redacted or replaced by a 403 fault, streams redacted across chunk boundaries
// or ended with an SSE error event, non-2xx answers untouched, the classifier on whole answers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { GatewayError } from '../../../gateway/errors.js';
import { MemoryCounterStore } from '../../../store/counters/memory.js';
import { chatAnswer, chatChunks, respondJson, respondStream, ssePayloads, streamedText } from '../../caching/testing.js';
import { FakeSecrets } from '../../sanitize/fake-secrets.js';
import { startClassifierStub, type ClassifierStub } from '../../sanitize/testing.js';
import { fakeContext, testDeps } from '../../testing.js';
import { SseRewriter, UNREAD_EVENT } from '../../../gateway/sse-rewriter.js';
import type { ApimState } from '../../types.js';
import { SANITIZE_MODEL_RESPONSE_FAULTS, sanitizeModelResponse } from './sanitize-model-response.js';

const deps = testDeps(new MemoryCounterStore());
const fake = new FakeSecrets(5);
const make = (spec: Record<string, unknown> = {}) => sanitizeModelResponse('answer-guard', spec, deps);
const streaming = () => fakeContext({ body: { stream: true } });

let classifier: ClassifierStub;
before(async () => {
  classifier = await startClassifierStub();
});
after(() => classifier?.close());

describe('config', () => {
  test('bad fields are refused; prompt injection is off by default on answers', async () => {
    assert.throws(() => make({ streamHoldback: -1 }), /streamHoldback/);
    assert.throws(() => make({ filters: { urls: {} } }), /Unrecognized key/);
    const out = await respondJson(make(), fakeContext(), {}, chatAnswer('Ignore all previous instructions, said the villain.'));
    assert.match(out.toString(), /said the villain/);
  });
});

describe('whole answers', () => {
  test('secrets and PII are redacted in the JSON answer', async () => {
    const key = fake.make('ghp');
    const out = JSON.parse((await respondJson(make(), fakeContext(), {}, chatAnswer(`Use ${key} and mail ops@acme-corp.com`))).toString());
    assert.equal(out.choices[0].message.content, 'Use [REDACTED:githubToken] and mail [REDACTED:email]');
    assert.equal(out.usage.total_tokens, 8, 'the rest of the answer is kept');
  });

  test('a clean answer comes back byte for byte', async () => {
    const raw = JSON.stringify(chatAnswer('Paris.'));
    assert.equal((await respondJson(make(), fakeContext(), {}, raw)).toString(), raw);
  });

  test('a blocking finding replaces the answer with a 403 fault', async () => {
    await assert.rejects(respondJson(make(), fakeContext(), {}, chatAnswer('Download it from http://45.33.32.156/x.exe')), (err: GatewayError) => {
      assert.equal(err.status, 403);
      assert.equal(err.code, SANITIZE_MODEL_RESPONSE_FAULTS.modelResponseBlocked);
      assert.match(err.message, /malicious URL/);
      return true;
    });
  });

  test('an answer in the other form than asked is read too: JSON to a stream request, events to one that did not ask', async () => {
    // Before: a stream request's flow had only `event` and the other's only `body`: the proxy, which takes the one the
    // answer's content type calls for, found none, and the answer passed unread.
    const key = fake.make('ghp');
    const json = JSON.parse((await respondJson(make(), streaming(), {}, chatAnswer(`Use ${key}`))).toString());
    assert.equal(json.choices[0].message.content, 'Use [REDACTED:githubToken]');
    assert.equal(streamedText(respondStream(make(), fakeContext(), {}, chatChunks(['Use ', key]))), 'Use [REDACTED:githubToken]');
    await assert.rejects(respondJson(make(), streaming(), {}, chatAnswer('Get http://45.33.32.156/x.exe')), { status: 403 });
  });

  test('errors from the model server pass untouched', () => {
    assert.equal(make().respond!(fakeContext(), {}, 500), undefined);
  });

  test('the classifier judges whole answers; closed and unreachable is 503', async () => {
    classifier.answer = 0.95;
    await assert.rejects(respondJson(make({ classifier: { url: classifier.url } }), fakeContext(), {}, chatAnswer('hm')), { code: SANITIZE_MODEL_RESPONSE_FAULTS.modelResponseBlocked });
    classifier.answer = 'fail';
    await assert.rejects(respondJson(make({ classifier: { url: classifier.url, failOpen: false } }), fakeContext(), {}, chatAnswer('hm')), { status: 503 });
    await respondJson(make({ classifier: { url: classifier.url } }), fakeContext(), {}, chatAnswer('hm'));
  });
});

describe('streams', () => {
  test('a secret split across chunks is redacted; the text is otherwise intact', () => {
    const key = fake.make('openai');
    const text = `Here you go: ${key} — keep it secret.`;
    for (const size of [1, 3, 8, 21]) {
      const parts: string[] = [];
      for (let i = 0; i < text.length; i += size) parts.push(text.slice(i, i + size));
      const out = respondStream(make(), streaming(), {}, chatChunks(parts));
      assert.equal(streamedText(out), 'Here you go: [REDACTED:openaiKey] — keep it secret.', `chunks of ${size}`);
      assert.equal(out.at(-1), '[DONE]');
    }
  });

  test('a blocking finding ends the stream with an error event and drops the rest, and the request records the fault', () => {
    const ctx = streaming();
    const out = respondStream(make(), ctx, {}, chatChunks(['Visit http://45.33', '.32.156/login', ' now', ' please']));
    const error = out.find((e) => e?.includes('"error"'));
    assert.equal(JSON.parse(error!).error.code, SANITIZE_MODEL_RESPONSE_FAULTS.modelResponseBlocked);
    // Records, metrics (policy violations) and the access log read it: the 200 went out before the block.
    assert.equal(ctx.errorCode, SANITIZE_MODEL_RESPONSE_FAULTS.modelResponseBlocked);
    assert.deepEqual(out.slice(out.indexOf(error!) + 1), out.slice(out.indexOf(error!) + 1).map(() => null));
    assert.ok(!streamedText(out.filter((e) => e !== error)).includes('45.33'));
  });

  test('text still held when a server sends [DONE] without finishing is released just before it', () => {
    const out = respondStream(make(), streaming(), {}, chatChunks(['unfinished']).filter((c) => !c.includes('"stop"')));
    assert.equal(streamedText(out), 'unfinished');
    // Before: the held text went out in place of [DONE], and clients waiting for [DONE] hung.
    assert.equal(out.at(-1), '[DONE]');
  });

  test('text still held when a stream just stops, with neither finish_reason nor [DONE], is released at its end, scanned', () => {
    const key = fake.make('openai');
    const flow = make().respond!(streaming(), {}, 200)!;
    // The role chunk and the text, without the finishing chunk and [DONE].
    const out = chatChunks(['Here: ', key, ' — bye.']).slice(0, -2).flatMap((c) => flow.event!(c) ?? []);
    // Before: the flow had nothing to give at the end, and the held text (up to streamHoldback characters) was lost.
    assert.equal(streamedText([...out, ...flow.eventsAtEnd!()]), 'Here: [REDACTED:openaiKey] — bye.');
    assert.deepEqual(flow.eventsAtEnd!(), [], 'released once');
  });

  test('a last event without its closing blank line is read like the others, and releases what is held', () => {
    // Before: the SSE rewriter passed it on as it came, key and all, and the text held before it never went out.
    const key = fake.make('openai');
    const flow = make().respond!(streaming(), {}, 200)!;
    const rewriter = new SseRewriter((d) => flow.event!(d));
    const [role, hello] = chatChunks(['Hello. ']);
    const last = JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: `Here it is: ${key}` }, finish_reason: 'stop' }] });
    const sent = rewriter.push(Buffer.from(`data: ${role}\n\ndata: ${hello}\n\ndata: ${last}\n`)) + rewriter.end();
    assert.equal(streamedText(ssePayloads(sent)), 'Hello. Here it is: [REDACTED:openaiKey]');
  });
});

describe('the responses API', () => {
  const answer = (text: string) => ({
    id: 'resp_1',
    object: 'response',
    output: [{ type: 'message', id: 'msg_1', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] }],
    usage: { input_tokens: 3, output_tokens: 5, total_tokens: 8 },
  });
  /** The events a responses-API server streams for one text part given in `deltas`. */
  const events = (deltas: string[]) => {
    const text = deltas.join('');
    const at = { item_id: 'msg_1', output_index: 0, content_index: 0 };
    return [
      JSON.stringify({ type: 'response.created', response: { id: 'resp_1', output: [] } }),
      ...deltas.map((delta) => JSON.stringify({ type: 'response.output_text.delta', ...at, delta })),
      JSON.stringify({ type: 'response.output_text.done', ...at, text }),
      JSON.stringify({ type: 'response.content_part.done', ...at, part: { type: 'output_text', text } }),
      JSON.stringify({ type: 'response.output_item.done', output_index: 0, item: answer(text).output[0] }),
      JSON.stringify({ type: 'response.completed', response: answer(text) }),
    ];
  };
  const deltasOf = (out: (string | null)[]) =>
    out
      .filter((e): e is string => e !== null)
      .map((e) => JSON.parse(e) as { type: string; delta?: string })
      .filter((e) => e.type === 'response.output_text.delta')
      .map((e) => e.delta)
      .join('');

  test('a whole answer\'s output text is redacted; a blocking finding is the 403 fault', async () => {
    // Before: the responses API's answers passed untouched, whole or streamed.
    const out = JSON.parse((await respondJson(make(), fakeContext({ url: '/v1/responses' }), {}, answer('Mail ops@acme-corp.com'))).toString());
    assert.equal(out.output[0].content[0].text, 'Mail [REDACTED:email]');
    assert.equal(out.usage.total_tokens, 8);
    await assert.rejects(respondJson(make(), fakeContext({ url: '/v1/responses' }), {}, answer('Get http://45.33.32.156/x.exe')), { status: 403 });
  });

  test('a stream: deltas redacted across chunks, the held end sent before the part ends, every repeat of the text redacted', () => {
    const text = 'Write to ops@acme-corp.com today.';
    for (const size of [1, 4, 9]) {
      const deltas: string[] = [];
      for (let i = 0; i < text.length; i += size) deltas.push(text.slice(i, i + size));
      const out = respondStream(make(), streaming(), {}, events(deltas));
      assert.equal(deltasOf(out), 'Write to [REDACTED:email] today.', `deltas of ${size}`);
      const ends = out.filter((e): e is string => e !== null && !e.includes('output_text.delta')).map((e) => JSON.parse(e));
      const done = ends.find((e) => e.type === 'response.output_text.done');
      assert.equal(done.text, 'Write to [REDACTED:email] today.');
      assert.equal(ends.find((e) => e.type === 'response.content_part.done').part.text, 'Write to [REDACTED:email] today.');
      assert.equal(ends.find((e) => e.type === 'response.output_item.done').item.content[0].text, 'Write to [REDACTED:email] today.');
      assert.equal(ends.find((e) => e.type === 'response.completed').response.output[0].content[0].text, 'Write to [REDACTED:email] today.');
      // The held end goes out as a delta just before the event that ends the part.
      const doneAt = out.findIndex((e) => e?.includes('"response.output_text.done"'));
      assert.match(out[doneAt - 1]!, /"response\.output_text\.delta"/);
    }
  });

  test('deltas still held when a stream just stops are released at its end as one more delta of their part', () => {
    const flow = make().respond!(fakeContext({ operation: 'responses', body: { stream: true } }), {}, 200)!;
    // response.created and the deltas, without the events that end the part.
    const out = events(['Write to ops@acme', '-corp.com today.']).slice(0, 3).flatMap((e) => flow.event!(e) ?? []);
    const end = flow.eventsAtEnd!();
    // Before: lost.
    assert.equal(deltasOf([...out, ...end]), 'Write to [REDACTED:email] today.');
    assert.deepEqual(JSON.parse(end.at(-1)!), { type: 'response.output_text.delta', item_id: 'msg_1', output_index: 0, content_index: 0, delta: JSON.parse(end.at(-1)!).delta });
  });

  test('a blocking finding ends the stream with the responses API\'s error event', () => {
    // Numbered as OpenAI and vLLM number a stream's events.
    const numbered = events(['Get http://45.33', '.32.156/x.exe', ' now']).map((e, i) => JSON.stringify({ ...JSON.parse(e), sequence_number: i }));
    const out = respondStream(make(), streaming(), {}, numbered);
    const error = out.map((e) => (e === null ? null : JSON.parse(e))).find((e) => e?.type === 'error');
    assert.equal(error.code, SANITIZE_MODEL_RESPONSE_FAULTS.modelResponseBlocked);
    // OpenAI's error event has a sequence_number (the Vercel AI SDK's schema requires it; before, it had none and the
    // SDK showed a validation error), here the number of the event it takes the place of; the fault as `error` too.
    const blockedAt = out.findIndex((e) => e !== null && JSON.parse(e).type === 'error');
    assert.equal(error.sequence_number, blockedAt);
    assert.equal(error.error.code, SANITIZE_MODEL_RESPONSE_FAULTS.modelResponseBlocked);
    assert.ok(!out.some((e) => e?.includes('45.33.32.156')), 'the address never went out');
    // Through the SSE rewriter, as the proxy runs it: the error event is named `error`, as the API names it (before,
    // it kept the name of the delta it replaced).
    const flow = make().respond!(streaming(), {}, 200)!;
    const rewriter = new SseRewriter((d) => flow.event!(d));
    const text = events(['Get http://45.33', '.32.156/x.exe']).map((d) => `event: ${(JSON.parse(d) as { type: string }).type}\ndata: ${d}\n\n`).join('');
    const sent = rewriter.push(Buffer.from(text)) + rewriter.end();
    assert.match(sent, /event: error\ndata: \{"type":"error"/);
  });

  test('a reasoning item\'s text and summary are redacted like output text, streamed (vLLM\'s events) and whole', async () => {
    const secret = 'Mail ops@acme-corp.com now';
    const redacted = 'Mail [REDACTED:email] now';
    const item = { type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: secret }], content: [{ type: 'reasoning_text', text: secret }] };
    const text = { item_id: 'rs_1', output_index: 0, content_index: 0 };
    const summary = { item_id: 'rs_1', output_index: 0, summary_index: 0 };
    const out = respondStream(make(), streaming(), {}, [
      ...['Mail ops@ac', 'me-corp.com now'].map((delta) => JSON.stringify({ type: 'response.reasoning_text.delta', ...text, delta })),
      JSON.stringify({ type: 'response.reasoning_text.done', ...text, text: secret }),
      ...['Mail ops@acme-c', 'orp.com now'].map((delta) => JSON.stringify({ type: 'response.reasoning_summary_text.delta', ...summary, delta })),
      JSON.stringify({ type: 'response.reasoning_summary_text.done', ...summary, text: secret }),
      JSON.stringify({ type: 'response.reasoning_summary_part.done', ...summary, part: { type: 'summary_text', text: secret } }),
      JSON.stringify({ type: 'response.output_item.done', output_index: 0, item }),
    ]).map((e) => JSON.parse(e!) as { type: string; delta?: string; text?: string; summary_index?: number });
    // Before: the reasoning deltas and their .done events went out in clear, and summaries were never read.
    assert.ok(!JSON.stringify(out).includes('ops@acme'), JSON.stringify(out));
    const deltas = (type: string) => out.filter((e) => e.type === type).map((e) => e.delta).join('');
    assert.equal(deltas('response.reasoning_text.delta'), redacted);
    assert.equal(deltas('response.reasoning_summary_text.delta'), redacted);
    // A summary's held end goes out at its own index, just before the event that ends it.
    const summaryDone = out.findIndex((e) => e.type === 'response.reasoning_summary_text.done');
    assert.deepEqual([out[summaryDone - 1].type, out[summaryDone - 1].summary_index], ['response.reasoning_summary_text.delta', 0]);
    assert.equal(out[summaryDone].text, redacted);
    const whole = JSON.parse((await respondJson(make(), fakeContext({ url: '/v1/responses' }), {}, { id: 'resp_1', object: 'response', output: [item] })).toString());
    assert.equal(whole.output[0].summary[0].text, redacted);
    assert.equal(whole.output[0].content[0].text, redacted);
  });
});

test('a streamed chat refusal is redacted like content', () => {
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] });
  const out = respondStream(make(), streaming(), {}, [chunk({ refusal: 'I will not mail ops@acme' }), chunk({ refusal: '-corp.com, sorry.' }), chunk({}, 'stop'), '[DONE]']);
  // Before: refusals streamed unread (whole answers' message.refusal were redacted).
  const refusal = out
    .filter((e): e is string => e !== null && e !== '[DONE]')
    .map((e) => (JSON.parse(e) as { choices: { delta: { refusal?: string } }[] }).choices[0].delta.refusal ?? '')
    .join('');
  assert.equal(refusal, 'I will not mail [REDACTED:email], sorry.');
});

test('a reasoning server\'s reasoning is redacted too, whole and streamed (vLLM: reasoning_content)', async () => {
  const whole = { id: 'c', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'Done.', reasoning_content: 'Their mail is ops@acme-corp.com' }, finish_reason: 'stop' }] };
  const out = JSON.parse((await respondJson(make(), fakeContext(), {}, whole)).toString());
  assert.equal(out.choices[0].message.reasoning_content, 'Their mail is [REDACTED:email]');
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => JSON.stringify({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] });
  const streamed = respondStream(make(), streaming(), {}, [chunk({ reasoning_content: 'mail ops@ac' }), chunk({ reasoning_content: 'me-corp.com' }), chunk({ content: 'Done.' }), chunk({}, 'stop'), '[DONE]']);
  const reasoning = streamed
    .filter((e): e is string => e !== null && e !== '[DONE]')
    .map((e) => (JSON.parse(e) as { choices: { delta: { reasoning_content?: string } }[] }).choices[0].delta.reasoning_content ?? '')
    .join('');
  assert.equal(reasoning, 'mail [REDACTED:email]');
  // The held end of the reasoning goes out once the answer starts: never after the answer's first text.
  const firstContent = streamed.findIndex((e) => e !== null && e !== '[DONE]' && /"content":"[^"]/.test(e));
  const lastReasoning = streamed.length - 1 - [...streamed].reverse().findIndex((e) => e !== null && e !== '[DONE]' && /"reasoning_content":"[^"]/.test(e));
  assert.ok(lastReasoning < firstContent, `reasoning at ${lastReasoning}, answer from ${firstContent}`);
});

describe('tool-call arguments, which the client acts on', () => {
  const SECRET = 'AKIAIOSFODNN7EXAMPLQ';
  const callArgs = { url: 'https://example.com/upload', token: SECRET, note: 'mail ops@acme-corp.com' };
  const cleanArgs = { url: 'https://example.com/upload', token: '[REDACTED:awsAccessKey]', note: 'mail [REDACTED:email]' };
  const head = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm' };
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => JSON.stringify({ ...head, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
  /** A server's chunks for tool calls with these arguments, each written in fragments of `size`. */
  const toolChunks = (calls: unknown[], size: number, finish: string | null = 'tool_calls') => [
    chunk({ role: 'assistant', content: null }),
    ...calls.flatMap((args, index) => {
      const text = JSON.stringify(args);
      const out = [chunk({ tool_calls: [{ index, id: `call_${index}`, type: 'function', function: { name: 'send', arguments: '' } }] })];
      for (let i = 0; i < text.length; i += size) out.push(chunk({ tool_calls: [{ index, function: { arguments: text.slice(i, i + size) } }] }));
      return out;
    }),
    ...(finish ? [chunk({}, finish)] : []),
    '[DONE]',
  ];
  type ToolDelta = { index: number; id?: string; function?: { arguments?: string } };
  /** Each call's arguments as a client assembles them: by index (the SDKs), and onto the call started last (hand-written clients). */
  const assembled = (out: (string | null)[]) => {
    const byIndex: string[] = [];
    const inTurn: string[] = [];
    for (const e of out) {
      if (e === null || e === '[DONE]') continue;
      for (const c of (JSON.parse(e) as { choices: { delta: { tool_calls?: ToolDelta[] } }[] }).choices) {
        for (const t of c.delta.tool_calls ?? []) {
          if (t.id) inTurn.push('');
          byIndex[t.index] = (byIndex[t.index] ?? '') + (t.function?.arguments ?? '');
          inTurn[inTurn.length - 1] += t.function?.arguments ?? '';
        }
      }
    }
    return { byIndex, inTurn };
  };

  test('a whole answer: chat tool calls, and the responses API\'s function and custom tool calls, are redacted', async () => {
    // Before: only the text was read; the key reached the client in the arguments.
    const chat = { ...chatAnswer(''), choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'send', arguments: JSON.stringify(callArgs) } }] }, finish_reason: 'tool_calls' }] };
    const out = JSON.parse((await respondJson(make(), fakeContext(), {}, chat)).toString());
    assert.deepEqual(JSON.parse(out.choices[0].message.tool_calls[0].function.arguments), cleanArgs);
    const responses = {
      object: 'response',
      output: [
        { type: 'function_call', id: 'fc_1', call_id: 'call_1', name: 'send', arguments: JSON.stringify(callArgs) },
        { type: 'custom_tool_call', id: 'ct_1', call_id: 'call_2', name: 'shell', input: `export KEY=${SECRET}` },
      ],
    };
    const r = JSON.parse((await respondJson(make(), fakeContext({ operation: 'responses', url: '/v1/responses' }), {}, responses)).toString());
    assert.deepEqual(JSON.parse(r.output[0].arguments), cleanArgs);
    assert.equal(r.output[1].input, 'export KEY=[REDACTED:awsAccessKey]');
    const blocked = { ...chat, choices: [{ index: 0, message: { role: 'assistant', tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'fetch', arguments: '{"url":"http://45.33.32.156/x.exe"}' } }] }, finish_reason: 'tool_calls' }] };
    await assert.rejects(respondJson(make(), fakeContext(), {}, blocked), { status: 403, code: SANITIZE_MODEL_RESPONSE_FAULTS.modelResponseBlocked });
  });

  test('a chat stream: each call\'s arguments held back like text, whole before the next call starts', () => {
    const second = { url: 'https://example.com/b', token: `x ${SECRET}` };
    for (const size of [1, 5, 13]) {
      const out = respondStream(make(), streaming(), {}, toolChunks([callArgs, second], size));
      assert.ok(!JSON.stringify(out).includes('IOSFODNN'), `fragments of ${size}: ${JSON.stringify(out)}`);
      const { byIndex, inTurn } = assembled(out);
      assert.deepEqual(byIndex.map((a) => JSON.parse(a)), [cleanArgs, { ...second, token: 'x [REDACTED:awsAccessKey]' }], `fragments of ${size}`);
      assert.deepEqual(inTurn, byIndex, 'nothing of a call comes after the next one started');
      assert.equal(out.at(-1), '[DONE]');
    }
    // A call whose held end is still there at [DONE] (no finish_reason) goes out before [DONE].
    const unfinished = respondStream(make(), streaming(), {}, toolChunks([callArgs], 4, null));
    assert.deepEqual(JSON.parse(assembled(unfinished).byIndex[0]), cleanArgs);
    assert.equal(unfinished.at(-1), '[DONE]');
  });

  test('a chat stream: a blocking finding in the arguments ends it with the error event before any of it goes out', () => {
    const out = respondStream(make(), streaming(), {}, toolChunks([{ url: 'http://45.33.32.156/x.exe' }], 3));
    assert.ok(out.some((e) => e?.includes(SANITIZE_MODEL_RESPONSE_FAULTS.modelResponseBlocked)));
    assert.ok(!out.some((e) => e?.includes('45.33')), JSON.stringify(out));
  });

  test('a responses stream: argument deltas held back, the held end before .done, every repeat redacted', () => {
    const text = JSON.stringify(callArgs);
    const item = { type: 'function_call', id: 'fc_1', call_id: 'call_1', name: 'send', arguments: text };
    const at = { item_id: 'fc_1', output_index: 0 };
    const deltas: string[] = [];
    for (let i = 0; i < text.length; i += 6) deltas.push(text.slice(i, i + 6));
    const out = respondStream(make(), fakeContext({ operation: 'responses', body: { stream: true } }), {}, [
      JSON.stringify({ type: 'response.output_item.added', ...at, item: { ...item, arguments: '' } }),
      ...deltas.map((delta) => JSON.stringify({ type: 'response.function_call_arguments.delta', ...at, delta })),
      JSON.stringify({ type: 'response.function_call_arguments.done', ...at, arguments: text }),
      JSON.stringify({ type: 'response.output_item.done', ...at, item }),
      JSON.stringify({ type: 'response.completed', response: { object: 'response', output: [item] } }),
    ]).map((e) => JSON.parse(e!) as { type: string; delta?: string; arguments?: string; item?: { arguments: string }; response?: { output: { arguments: string }[] } });
    assert.ok(!JSON.stringify(out).includes('IOSFODNN'), JSON.stringify(out));
    const streamed = out.filter((e) => e.type === 'response.function_call_arguments.delta').map((e) => e.delta).join('');
    assert.deepEqual(JSON.parse(streamed), cleanArgs);
    const done = out.findIndex((e) => e.type === 'response.function_call_arguments.done');
    assert.equal(out[done - 1].type, 'response.function_call_arguments.delta');
    assert.deepEqual(JSON.parse(out[done].arguments!), cleanArgs);
    assert.deepEqual(JSON.parse(out[done + 1].item!.arguments), cleanArgs);
    assert.deepEqual(JSON.parse(out[done + 2].response!.output[0].arguments), cleanArgs);
  });
});

describe('logprobs, which repeat the text', () => {
  const SECRET = 'AKIAIOSFODNN7EXAMPLQ';
  const PIECES = ['The key is ', SECRET.slice(0, 8), SECRET.slice(8), ' ok.'];
  const lp = (token: string) => ({ token, logprob: -0.1, bytes: [...Buffer.from(token)], top_logprobs: [{ token, logprob: -0.1, bytes: [...Buffer.from(token)] }] });
  /** Whether any of the secret (its first piece included: what a block let out before) is anywhere in `out`. */
  const leaks = (out: unknown) => {
    const text = JSON.stringify(out);
    return text.includes(PIECES[1]) || text.includes(PIECES[2]) || text.includes(JSON.stringify([...Buffer.from(PIECES[1])]).slice(1, -1));
  };

  test('a whole chat, completions or responses answer comes without them; a clean one without logprobs is untouched', async () => {
    // Before: the content said [REDACTED:awsAccessKey] while the logprobs spelled the key out, token by token.
    const chat = { ...chatAnswer(PIECES.join('')), choices: [{ index: 0, message: { role: 'assistant', content: PIECES.join('') }, logprobs: { content: PIECES.map(lp) }, finish_reason: 'stop' }] };
    const out = JSON.parse((await respondJson(make(), fakeContext(), {}, chat)).toString());
    assert.equal(out.choices[0].message.content, 'The key is [REDACTED:awsAccessKey] ok.');
    assert.equal(out.choices[0].logprobs, null);
    const completion = { object: 'text_completion', choices: [{ index: 0, text: 'Paris.', logprobs: { tokens: ['Paris', '.'], token_logprobs: [-0.1, -0.2], top_logprobs: [{ Paris: -0.1 }, { '.': -0.2 }], text_offset: [0, 5] }, finish_reason: 'stop' }] };
    const plain = JSON.parse((await respondJson(make(), fakeContext({ operation: 'completions' }), {}, completion)).toString());
    assert.equal(plain.choices[0].logprobs, null, 'a clean answer loses them too: its alternatives are not scanned');
    const responses = { object: 'response', output: [{ type: 'message', content: [{ type: 'output_text', text: PIECES.join(''), annotations: [], logprobs: PIECES.map(lp) }] }] };
    const r = JSON.parse((await respondJson(make(), fakeContext({ operation: 'responses', url: '/v1/responses' }), {}, responses)).toString());
    assert.deepEqual(r.output[0].content[0].logprobs, []);
    assert.ok(!leaks(out) && !leaks(r));
  });

  test('a stream sends none, redacting or blocking: nothing of the secret goes out ahead of the block', () => {
    const chunks = (): string[] => {
      const head = { id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm' };
      return [
        ...PIECES.map((p) => JSON.stringify({ ...head, choices: [{ index: 0, delta: { content: p }, logprobs: { content: [lp(p)] }, finish_reason: null }] })),
        JSON.stringify({ ...head, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] }),
        '[DONE]',
      ];
    };
    const redacted = respondStream(make(), streaming(), {}, chunks());
    assert.equal(streamedText(redacted), 'The key is [REDACTED:awsAccessKey] ok.');
    assert.ok(!leaks(redacted), JSON.stringify(redacted));
    const blocked = respondStream(make({ filters: { secrets: { action: 'block' } } }), streaming(), {}, chunks());
    assert.ok(blocked.some((e) => e?.includes(SANITIZE_MODEL_RESPONSE_FAULTS.modelResponseBlocked)));
    assert.ok(!leaks(blocked), JSON.stringify(blocked));
  });

  test('a responses stream: none on the deltas, nor on any event that repeats the text', () => {
    const text = PIECES.join('');
    const at = { item_id: 'msg_1', output_index: 0, content_index: 0 };
    const part = { type: 'output_text', text, annotations: [], logprobs: PIECES.map(lp) };
    const events = [
      ...PIECES.map((delta) => JSON.stringify({ type: 'response.output_text.delta', ...at, delta, logprobs: [lp(delta)] })),
      JSON.stringify({ type: 'response.output_text.done', ...at, text, logprobs: PIECES.map(lp) }),
      JSON.stringify({ type: 'response.content_part.done', ...at, part }),
      JSON.stringify({ type: 'response.output_item.done', output_index: 0, item: { type: 'message', content: [part] } }),
      JSON.stringify({ type: 'response.completed', response: { output: [{ type: 'message', content: [part] }] } }),
    ];
    const out = respondStream(make(), fakeContext({ operation: 'responses', body: { stream: true } }), {}, events);
    assert.ok(!leaks(out), JSON.stringify(out));
    assert.ok(out.every((e) => e === null || !e.includes('"logprob"')));
  });

  test("a stored response's read, which asks for no stream, is redacted when vLLM replays it as events (`?stream=true`) and when it answers JSON", async () => {
    const read = () => {
      const ctx = fakeContext({ method: 'GET', url: '/v1/responses/resp_1?stream=true', body: undefined });
      ctx.storedResponse = { id: 'resp_1', action: 'retrieve' };
      return ctx;
    };
    const at = { item_id: 'msg_1', output_index: 0, content_index: 0 };
    const events = [JSON.stringify({ type: 'response.output_text.delta', ...at, delta: 'Mail ops@acme-corp.com now' }), JSON.stringify({ type: 'response.output_text.done', ...at, text: 'Mail ops@acme-corp.com now' })];
    const out = respondStream(make(), read(), {}, events);
    assert.ok(out.every((e) => e === null || !e.includes('acme-corp')), JSON.stringify(out));
    const json = JSON.stringify({ object: 'response', output: [{ type: 'message', content: [{ type: 'output_text', text: 'Mail ops@acme-corp.com' }] }] });
    assert.ok(!(await respondJson(make(), read(), {}, json)).toString().includes('acme-corp'));
  });
});

describe('what the policy cannot read', () => {
  test('an event too long to read ends the stream with the error event, in the API\'s shape, instead of going out', () => {
    // Before: the SSE rewriter passed it on unread, unredacted.
    const out = respondStream(make(), streaming(), {}, [...chatChunks(['held back']).slice(0, 2), UNREAD_EVENT, ...chatChunks(['after']).slice(1)]);
    const error = out.find((e) => e?.includes('"error"'));
    assert.match(JSON.parse(error!).error.message, /too long to scan/);
    assert.ok(out.slice(out.indexOf(error!) + 1).every((e) => e === null), 'nothing after it');
    assert.ok(!out.includes(UNREAD_EVENT));
    const responses = respondStream(make(), fakeContext({ operation: 'responses', body: { stream: true } }), {}, [UNREAD_EVENT]);
    assert.equal(JSON.parse(responses[0]!).type, 'error');
  });

  test('embeddings get no flow: there is no text, and holding the answer failed large ones', () => {
    assert.equal(make({ classifier: { url: classifier.url } }).respond!(fakeContext({ operation: 'embeddings' }), {}, 200), undefined);
  });

  test('with a classifier, a stream is marked unjudged (no cache may keep it); a whole answer is not', () => {
    const state: ApimState = {};
    make({ classifier: { url: classifier.url } }).respond!(streaming(), state, 200);
    assert.equal(state.answerUnjudged, true);
    const whole: ApimState = {};
    make({ classifier: { url: classifier.url } }).respond!(fakeContext(), whole, 200);
    assert.equal(whole.answerUnjudged, undefined);
    const noClassifier: ApimState = {};
    make().respond!(streaming(), noClassifier, 200);
    assert.equal(noClassifier.answerUnjudged, undefined);
  });
});

test('every fault code is documented', () => {
  const readme = readFileSync(new URL('./README.md', import.meta.url), 'utf8');
  const engine = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const code of Object.values(SANITIZE_MODEL_RESPONSE_FAULTS)) {
    assert.ok(readme.includes(`| \`${code}\` |`), `${code} in the policy README`);
    assert.ok(engine.includes(`| \`${code}\` |`), `${code} in src/policy/README.md`);
  }
});
