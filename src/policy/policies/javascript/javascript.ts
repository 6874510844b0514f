// JavaScript: a policy script run in a real sandbox (QuickJS in worker threads) with time and memory limits.
// It reads and changes the request (or, in the response flow, the whole answer) through `context`, `request` and
// `response`; its changes are applied once the worker answers, and the event loop never waits on the script.
import { createHash } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import { compileFunction } from 'node:vm';
import { javaScriptSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { policyFault } from '../../../gateway/errors.js';
import type { ResponseFlow } from '../../../gateway/hooks.js';
import { parseDuration } from '../../../lib/duration.js';
import type { ApimState, Policy, PolicyFactory } from '../../types.js';
import { SCRIPT_PARAMETERS } from './sandbox-prelude.js';
import { SandboxError, sandboxPool } from './sandbox-pool.js';
import type { ScriptRef } from './sandbox-protocol.js';
import { applyRequestChanges, applyResponseChanges, applyVariables, responseInput, scriptInput, scriptOutput, type ScriptOutput } from './script-io.js';

export const JAVASCRIPT = 'javascript';

export const JAVASCRIPT_FAULTS = {
  scriptExecutionFailed: 'steps.javascript.ScriptExecutionFailed',
  /** tollgate's own code: Apigee reports a time-out as ScriptExecutionFailed. */
  scriptTimedOut: 'steps.javascript.ScriptTimedOut',
} as const;

/**
 * Catches syntax errors when the configuration loads; only compiles (V8), never runs the script outside the sandbox.
 * Compiled as the function body it becomes (scriptProgram): a source with an unbalanced `}` closed the wrapper
 * early and put code at the top level of the sandbox script, which ran when the worker compiled it.
 */
function checkSyntax(source: string): void {
  try {
    compileFunction(source, [...SCRIPT_PARAMETERS], { filename: 'policy.js' });
  } catch (err) {
    throw new Error(`source: ${(err as Error).message}`);
  }
}

/**
 * @example javaScript('tenant', { source: "request.headers['x-tenant'] = context.getVariable('app.name');" }, deps) —
 * the model server gets x-tenant; javaScript('redact', { flow: 'response', source: 'response.body.id = null;' }, deps)
 */
export const javaScript: PolicyFactory = (name, spec) => {
  const s = javaScriptSpec.parse(spec);
  checkSyntax(s.source);
  const memoryLimitBytes = s.memoryLimitMb * 1024 * 1024;
  // The policy's name is part of the runtime's identity: two policies with the same source (one per tenant) shared
  // the globals a script keeps between runs, so one tenant's script read what the other's had left.
  const id = createHash('sha256').update(`${name}\n${memoryLimitBytes}\n${s.source}`).digest('hex');
  const script: ScriptRef = { id, source: s.source, memoryLimitBytes };
  const timeLimitMs = parseDuration(s.timeLimit);
  const pool = sandboxPool();
  const start = () => pool.start();
  const failed = (err: unknown) => policyFault(500, JAVASCRIPT_FAULTS.scriptExecutionFailed, `Execution of ${name} failed: ${(err as Error).message}`);

  async function execute(input: unknown): Promise<ScriptOutput> {
    try {
      return scriptOutput(await pool.run(script, timeLimitMs, JSON.stringify(input)));
    } catch (err) {
      if (err instanceof SandboxError && err.kind === 'timeout') {
        throw policyFault(500, JAVASCRIPT_FAULTS.scriptTimedOut, `Execution of ${name} timed out after ${s.timeLimit}`);
      }
      throw failed(err);
    }
  }

  if (s.flow === 'request') {
    return {
      type: JAVASCRIPT,
      name,
      start,
      async admit(ctx: RequestContext, state: ApimState) {
        const input = scriptInput(ctx, state, 'request');
        const bodyBefore = JSON.stringify(input.request.body);
        const out = await execute(input);
        try {
          applyRequestChanges(ctx, state, input, out, bodyBefore);
        } catch (err) {
          throw failed(err);
        }
      },
    } satisfies Policy;
  }

  return {
    type: JAVASCRIPT,
    name,
    start,
    // The script reads the request and its variables: what it makes of an answer may be one request's.
    answerEdits: 'perRequest',
    respond(ctx: RequestContext, state: ApimState): ResponseFlow {
      let held: OutgoingHttpHeaders = {};
      return {
        // The proxy holds the head until the body is rewritten, so header changes made then still go out.
        headers: (_status, headers) => void (held = headers),
        async body(body: Buffer, status: number): Promise<Buffer> {
          const { value, bodyText } = responseInput(status, held, body);
          const input = { ...scriptInput(ctx, state, 'response'), response: value };
          const out = await execute(input);
          try {
            applyVariables(state, out);
            return applyResponseChanges(held, value.headers, out, bodyText) ?? body;
          } catch (err) {
            throw failed(err);
          }
        },
      };
    },
  } satisfies Policy;
};
