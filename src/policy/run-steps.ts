// Running a compiled phase: synchronous steps run back to back; only a step that returns a promise makes the rest wait.
// The response phase collects each policy's part of the response flow and chains them.
import type { RequestContext } from '../gateway/context.js';
import type { ResponseFlow } from '../gateway/hooks.js';
import { chainResponseFlows } from './response-chain.js';
import type { ApimState, RespondStep, Step } from './types.js';

export function runSteps(steps: readonly Step[], ctx: RequestContext, state: ApimState): void | Promise<void> {
  for (let i = 0; i < steps.length; i++) {
    const pending = steps[i](ctx, state);
    if (pending) return finish(pending, steps, i + 1, ctx, state);
  }
}

async function finish(pending: Promise<void>, steps: readonly Step[], from: number, ctx: RequestContext, state: ApimState): Promise<void> {
  await pending;
  for (let i = from; i < steps.length; i++) await steps[i](ctx, state);
}

/** The response flow of these steps for an answer with `status`: undefined when none has one. */
export function runRespond(steps: readonly RespondStep[], ctx: RequestContext, state: ApimState, status: number): ResponseFlow | undefined {
  if (steps.length === 1) return steps[0](ctx, state, status);
  const flows: ResponseFlow[] = [];
  for (const step of steps) {
    const flow = step(ctx, state, status);
    if (flow) flows.push(flow);
  }
  return chainResponseFlows(flows);
}
