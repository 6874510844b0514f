import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Span } from '@opentelemetry/api';
import { NOOP_SPAN, NOOP_TRACER, type RequestTracer } from '../telemetry/tracing.js';
import { phaseSteps } from './phase-steps.js';
import { runSteps } from './run-steps.js';
import { fakeContext } from './testing.js';
import type { Policy } from './types.js';

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
