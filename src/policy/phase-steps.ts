// Binding policies into a phase's steps: consecutive policies under the same template condition become one step
// that tests the condition once and runs them all, or skips them all.
import type { RequestTracer } from '../telemetry/tracing.js';
import { runRespond, runSteps } from './run-steps.js';
import type { Policy, RespondStep, Step } from './types.js';
import type { TemplatePolicy } from './template-policies.js';

type RequestPhase = 'intercept' | 'authenticate' | 'admit';

/** Runs of consecutive policies that share a condition (null: unconditional). */
function runsOf(listed: readonly TemplatePolicy[]): { condition: TemplatePolicy['condition']; members: TemplatePolicy[] }[] {
  const runs: { condition: TemplatePolicy['condition']; members: TemplatePolicy[] }[] = [];
  for (const t of listed) {
    const last = runs.at(-1);
    if (last && last.condition === t.condition) last.members.push(t);
    else runs.push({ condition: t.condition, members: [t] });
  }
  return runs;
}

/**
 * A policy's step in a span of its own, `<type> <name>` (`quota gold-quota`), under the `policies` stage's span (the request's before
 * it, in the intercept phase); a refusal marks the span failed with its fault code.
 */
function traced(step: Step, policy: Policy, tracer: RequestTracer): Step {
  const name = `${policy.type} ${policy.name}`;
  return (ctx, state) => {
    const span = tracer.startChild(ctx.policiesSpan ?? ctx.span, name);
    let pending: void | Promise<void>;
    try {
      pending = step(ctx, state);
    } catch (err) {
      tracer.endChild(span, err);
      throw err;
    }
    if (!pending) return tracer.endChild(span);
    return pending.then(
      () => tracer.endChild(span),
      (err: unknown) => {
        tracer.endChild(span, err);
        throw err;
      },
    );
  };
}

/**
 * An admit step that does not run once the request is answered (`ctx.directResponse`, a cache hit): as in Apigee,
 * where a ResponseCache hit skips the rest of the request flow, no policy listed after the lookup reserves tokens
 * for, counts or refuses an answer already given. Intercept answers go on through the phase (CORS adds its headers to
 * the token endpoint's answer), and a hit's response headers are made after admission (hitHeaders).
 */
const unlessAnswered =
  (step: Step): Step =>
  (ctx, state) =>
    ctx.directResponse ? undefined : step(ctx, state);

/**
 * The steps of one request phase for these policies, in order; policies without the phase are left out. With a
 * tracer set to policySpans, each policy's step gets a span of its own; otherwise the steps are the policies' own.
 */
export function phaseSteps(listed: readonly TemplatePolicy[], phase: RequestPhase, tracer?: RequestTracer): Step[] {
  const inPhase = phase === 'admit' ? unlessAnswered : (step: Step) => step;
  const out: Step[] = [];
  for (const { condition, members } of runsOf(listed.filter((t) => t.policy[phase]))) {
    const steps: Step[] = members.map(({ policy }) => {
      const step: Step = policy[phase]!.bind(policy);
      return inPhase(tracer?.policySpans ? traced(step, policy, tracer) : step);
    });
    if (!condition) out.push(...steps);
    else out.push(inPhase((ctx, state) => (condition.test(ctx, state) ? runSteps(steps, ctx, state) : undefined)));
  }
  return out;
}

/** Whether the policy's response flow may change (or refuse) the answer a cache keeps (Policy.answerEdits). */
export const editsAnswer = (policy: Policy): boolean => policy.respond !== undefined && policy.answerEdits !== 'none';

/**
 * The policy's response step; one that rewrites answers per app or per request says so to the caches
 * (ApimState.answerSharedWithin, answerUnjudged).
 */
function respondStep(policy: Policy): RespondStep {
  const step: RespondStep = policy.respond!.bind(policy);
  if (policy.answerEdits === 'perApp') {
    return (ctx, state, status) => {
      state.answerSharedWithin = 'app';
      return step(ctx, state, status);
    };
  }
  if (policy.answerEdits !== 'perRequest') return step;
  return (ctx, state, status) => {
    state.answerUnjudged = true;
    return step(ctx, state, status);
  };
}

/**
 * The response phase's steps for these policies, in order. Whether a policy rewrites answers, and per request, is
 * known here, so the caches learn it from the state at the cost of an assignment.
 */
export function respondSteps(listed: readonly TemplatePolicy[]): RespondStep[] {
  const out: RespondStep[] = [];
  for (const { condition, members } of runsOf(listed.filter((t) => t.policy.respond))) {
    const steps = members.map(({ policy }) => respondStep(policy));
    if (!condition) {
      out.push(...steps);
      continue;
    }
    // The requests the condition holds for would get the answer rewritten (or refused): a cache must not give them
    // the answer of one it skipped.
    const rewrites = members.some(({ policy }) => editsAnswer(policy));
    out.push((ctx, state, status) => {
      if (condition.test(ctx, state)) return runRespond(steps, ctx, state, status);
      if (rewrites) state.answerUnjudged = true;
      return undefined;
    });
  }
  return out;
}
