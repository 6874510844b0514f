// Running a compiled phase: synchronous steps run back to back; only a step that returns a promise makes the rest wait.
import type { RequestContext } from '../gateway/context.js';
import type { ApimState, Step } from './types.js';

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
