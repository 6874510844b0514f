import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Span } from '@opentelemetry/api';
import type { RequestContext } from '../gateway/context.js';
import { NOOP_SPAN, NOOP_TRACER, type RequestTracer } from '../telemetry/tracing.js';
import { compileCondition } from './condition.js';
import { phaseSteps, respondSteps } from './phase-steps.js';
import { runRespond, runSteps } from './run-steps.js';
import { fakeContext } from './testing.js';
import type { ApimState, Policy } from './types.js';

/** A tracer that records which spans were started and how they ended. */
function recordingTracer(policySpans: boolean) {
  const spans: { name: string; parent: Span; error?: unknown }[] = [];
  const tracer: RequestTracer = {
    ...NOOP_TRACER,
    enabled: true,
    policySpans,
    startChild(parent, name) {
      spans.push({ name, parent });
      return { index: spans.length - 1 } as unknown as Span;
    },
    endChild(span, err) {
      spans[(span as unknown as { index: number }).index].error = err ?? null;
    },
  };
  return { tracer, spans };
}

const allow: Policy = { type: 'spike-arrest', name: 'burst', admit: () => undefined };
const later: Policy = { type: 'quota', name: 'monthly', admit: () => Promise.resolve() };
const refuse: Policy = {
  type: 'access-control',
  name: 'office',
  admit: () => {
    throw Object.assign(new Error('no'), { code: 'accesscontrol.IPDeniedAccess' });
  },
};
const listed = (...policies: Policy[]) => policies.map((policy) => ({ policy, condition: null, origin: 'test' }));

test('with policySpans, each policy runs in a span of its own under the policies span; a refusal ends its span failed', async () => {
  const { tracer, spans } = recordingTracer(true);
  const ctx = fakeContext();
  const policiesSpan = { policies: true } as unknown as Span;
  ctx.policiesSpan = policiesSpan;
  await runSteps(phaseSteps(listed(allow, later), 'admit', tracer), ctx, ctx.apim!);
  assert.deepEqual(spans.map((s) => [s.name, s.parent === policiesSpan, s.error]), [
    ['spike-arrest burst', true, null],
    ['quota monthly', true, null],
  ]);
  spans.length = 0;
  await assert.rejects(async () => runSteps(phaseSteps(listed(refuse), 'admit', tracer), ctx, ctx.apim!), /no/);
  assert.equal(spans[0].name, 'access-control office');
  assert.equal((spans[0].error as { code: string }).code, 'accesscontrol.IPDeniedAccess');
});

test('without policySpans (the default) no span is started: the steps are the policies\' own', async () => {
  const { tracer, spans } = recordingTracer(false);
  const ctx = fakeContext();
  ctx.policiesSpan = NOOP_SPAN;
  await runSteps(phaseSteps(listed(allow, later), 'admit', tracer), ctx, ctx.apim!);
  assert.deepEqual(spans, []);
});

test('the response steps tell the caches what this request\'s policies made of its answer', () => {
  const flow = () => ({ body: (b: Buffer) => b });
  const sanitizer: Policy = { type: 'sanitize-model-response', name: 'guard', respond: flow };
  const cache: Policy = { type: 'response-cache', name: 'answers', answerEdits: 'none', respond: flow };
  const tagger: Policy = { type: 'assign-message', name: 'tag', answerEdits: 'perApp', respond: flow };
  const echo: Policy = { type: 'assign-message', name: 'echo', answerEdits: 'perRequest', respond: flow };
  const internal = compileCondition("'x-internal' in request.headers");
  const external = compileCondition("!('x-internal' in request.headers)");
  const steps = respondSteps([
    { policy: cache, condition: internal, origin: 'test' },
    { policy: sanitizer, condition: external, origin: 'test' },
  ]);
  const run = (headers: Record<string, string>, list = steps) => {
    const state: ApimState = {};
    runRespond(list, fakeContext({ headers }), state, 200);
    return state;
  };
  // Before: nothing said a sanitizer had been skipped, and its cache stored the raw answer for every request.
  assert.equal(run({ 'x-internal': '1' }).answerUnjudged, true, 'a rewrite skipped by its condition');
  assert.equal(run({}).answerUnjudged, undefined, 'a cache skipped by its condition changes no answer');
  const tagging = respondSteps([{ policy: tagger, condition: null, origin: 'test' }]);
  assert.equal(run({}, tagging).answerSharedWithin, 'app', 'a rewrite from the key\'s variables');
  assert.equal(run({}).answerSharedWithin, undefined);
  // One app's key shared by many users: a rewrite from a request header is one request's, stored for none.
  const echoing = respondSteps([{ policy: echo, condition: null, origin: 'test' }]);
  assert.equal(run({}, echoing).answerUnjudged, true, 'a rewrite from the request\'s own variables');
});

test('in admit, a step that answers (a cache hit) ends the phase, conditional runs too; in intercept the others still run', async () => {
  const log: string[] = [];
  const answers = (phase: 'intercept' | 'admit'): Policy => ({
    type: 'response-cache',
    name: 'answers',
    [phase]: (ctx: RequestContext) => {
      log.push('answers');
      // Asynchronous, as a Redis lookup is: the steps after it wait on it.
      return Promise.resolve().then(() => void (ctx.directResponse = { status: 200, headers: {}, body: 'cached' }));
    },
  });
  const after = (name: string, phase: 'intercept' | 'admit'): Policy => ({ type: 'llm-token-quota', name, [phase]: () => void log.push(name) });
  const always = compileCondition("request.method == 'POST'");
  const run = async (phase: 'intercept' | 'admit') => {
    log.length = 0;
    const steps = phaseSteps(
      [
        { policy: answers(phase), condition: always, origin: 'test' },
        { policy: after('same-run', phase), condition: always, origin: 'test' },
        { policy: after('next', phase), condition: null, origin: 'test' },
        { policy: after('conditional', phase), condition: always, origin: 'test' },
      ],
      phase,
    );
    await runSteps(steps, fakeContext(), {});
    return [...log];
  };
  // Before: every admit step ran after the hit, so a token quota listed after the cache reserved for it, or refused it.
  assert.deepEqual(await run('admit'), ['answers']);
  // The token endpoint's answer still gets the CORS headers of a policy listed after it.
  assert.deepEqual(await run('intercept'), ['answers', 'same-run', 'next', 'conditional']);
});
