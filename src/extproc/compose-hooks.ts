// Several GatewayHooks as one: the first is outermost, as filters in an Envoy chain — it sees the request first
// and the answer last.
import type { RequestContext } from '../gateway/context.js';
import type { GatewayHooks, ResponseFlow } from '../gateway/hooks.js';
import { chainResponseFlows } from '../policy/response-chain.js';

type Step = (ctx: RequestContext) => void | Promise<void>;

function runFrom(steps: Step[], from: number, ctx: RequestContext): void | Promise<void> {
  for (let i = from; i < steps.length; i++) {
    if (ctx.directResponse) return;
    const r = steps[i](ctx);
    if (r) return r.then(() => runFrom(steps, i + 1, ctx));
  }
}

/** Runs each in order, awaiting only what returns a promise; stops once one answers through ctx.directResponse. */
function sequence(steps: Step[]): Step | undefined {
  if (steps.length <= 1) return steps[0];
  return (ctx) => runFrom(steps, 0, ctx);
}

/**
 * @example
 * dataPlane.hooks = composeHooks(extprocHooks(extension, { registry }), engine.hooks);
 */
export function composeHooks(...layers: GatewayHooks[]): GatewayHooks {
  const present = layers.filter((l) => Object.keys(l).length > 0);
  if (present.length <= 1) return present[0] ?? {};
  const steps = (name: 'intercept' | 'authenticate' | 'admit') => present.filter((l) => l[name]).map((l) => l[name]!.bind(l));
  const intercept = sequence(steps('intercept'));
  const authenticate = sequence(steps('authenticate'));
  const admit = sequence(steps('admit'));
  // The answer passes the innermost layer first.
  const responders = present.filter((l) => l.respond).reverse();
  const completers = present.filter((l) => l.complete);
  const refusers = present.filter((l) => l.refused);
  const quota = present.find((l) => l.quotaReport);
  const format = present.find((l) => l.faultFormat);
  const credentials = present.find((l) => l.credentialSources)?.credentialSources;
  return {
    ...(intercept && { intercept }),
    ...(authenticate && { authenticate }),
    ...(admit && { admit }),
    ...(responders.length > 0 && {
      respond: (ctx: RequestContext, status: number) => {
        const flows: ResponseFlow[] = [];
        for (const l of responders) {
          const f = l.respond!(ctx, status);
          if (f) flows.push(f);
        }
        return chainResponseFlows(flows);
      },
    }),
    ...(completers.length > 0 && {
      complete: (ctx: RequestContext) => {
        let failure: unknown;
        for (const l of completers) {
          try {
            l.complete!(ctx);
          } catch (err) {
            failure ??= err;
          }
        }
        if (failure) throw failure;
      },
    }),
    ...(refusers.length > 0 && {
      refused: (ctx: RequestContext) => {
        for (const l of refusers) l.refused!(ctx);
      },
    }),
    ...(quota && { quotaReport: (ctx: RequestContext) => quota.quotaReport!(ctx) }),
    ...(format && { faultFormat: () => format.faultFormat!() }),
    ...(credentials && { credentialSources: credentials }),
  };
}
