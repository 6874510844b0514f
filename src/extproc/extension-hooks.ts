// An external ext_proc server as a step of tollgate's own request path (what a GCPTrafficExtension does for a GKE
// Gateway): its request-phase verdict in the credentials phase, its response-phase changes in the response flow.
// With failOpen false, an extension that cannot answer in time refuses the request with a 500 before anything is
// sent; with failOpen true the request goes on as if it were not there. Either way the failure is counted. An
// extension that closes its stream cleanly is done with the request, which goes on without it (counted apart).
import type { OutgoingHttpHeaders } from 'node:http';
import type { Registry } from 'prom-client';
import type { RequestContext } from '../gateway/context.js';
import { GatewayError, gatewayError } from '../gateway/errors.js';
import type { GatewayHooks, ResponseFlow } from '../gateway/hooks.js';
import { callerRecordsMetadata, identityOfAnswer } from './caller-records.js';
import { ExtprocCallError, ExtprocClient, type ExtprocCall, type ExtprocClientOptions } from './client.js';
import { closeCounter, failureCounter } from './client-metrics.js';
import { requestCallout, responseCallout, type BodySendMode, type CalloutPlan, type ExtensionEvent } from './extension-callouts.js';
import { headerMap } from './headers.js';
import { answerReadAs, isEventStream } from '../gateway/media-type.js';

export interface ExtensionOptions extends ExtprocClientOptions {
  /** Names the extension in errors and in the failure metric's `extension` label. */
  name: string;
  supportedEvents: readonly ExtensionEvent[];
  requestBodySendMode?: BodySendMode;
  responseBodySendMode?: BodySendMode;
  /** Per message, as Envoy's message_timeout. */
  timeoutMs: number;
  failOpen: boolean;
}

export interface ExtensionHooks extends GatewayHooks {
  /** Closes the channel to the extension. */
  close(): void;
}

const EMPTY = Buffer.alloc(0);

/**
 * @example
 * const apigee = extprocHooks({ name: 'apigee', address: '10.0.0.7:443', supportedEvents: ['RequestHeaders', 'RequestBody'],
 *   timeoutMs: 1000, failOpen: false }, { registry });
 * dataPlane.hooks = composeHooks(apigee, engine.hooks);
 */
export function extprocHooks(ext: ExtensionOptions, deps: { registry?: Registry } = {}): ExtensionHooks {
  // This gateway records the request: a tollgate listener behind it (on the same database) must not count it again,
  // and hands back whom it identified (caller-records.ts).
  const client = new ExtprocClient({ ...ext, metadata: callerRecordsMetadata });
  const count = failureCounter(deps.registry);
  const countClose = closeCounter(deps.registry);
  const plan: CalloutPlan = { events: new Set(ext.supportedEvents), requestBodyMode: ext.requestBodySendMode ?? 'BUFFERED', responseBodyMode: ext.responseBodySendMode ?? 'BUFFERED' };
  const requestPhase = plan.events.has('RequestHeaders') || plan.events.has('RequestBody');
  const responsePhase = plan.events.has('ResponseHeaders') || plan.events.has('ResponseBody');
  /** The stream of each request in progress; null once it failed (open) or was closed, so the answer skips the extension. */
  const calls = new WeakMap<RequestContext, ExtprocCall | null>();

  const failed = (ctx: RequestContext, err: unknown): void => {
    // A verdict (an immediate response) or a body the extension made unreadable is the request's answer.
    if (err instanceof GatewayError) throw err;
    const reason = err instanceof ExtprocCallError ? err.reason : 'error';
    count(ext.name, reason);
    calls.get(ctx)?.cancel();
    calls.set(ctx, null);
    if (!ext.failOpen) throw gatewayError('TG_ERR_EXTENSION_FAILED', `The extension "${ext.name}" could not answer (${reason})`);
  };

  const open = (ctx: RequestContext): ExtprocCall => {
    const call = client.open(
      ext.timeoutMs,
      () => {
        countClose(ext.name);
        calls.set(ctx, null);
      },
      (answer) => {
        const identity = identityOfAnswer(answer);
        if (identity) ctx.extensionIdentity = identity;
      },
    );
    calls.set(ctx, call);
    return call;
  };

  const respond = (ctx: RequestContext): ResponseFlow | undefined => {
    const existing = calls.get(ctx);
    if (existing === null) return undefined;
    const call = existing ?? open(ctx);
    let out: OutgoingHttpHeaders = {};
    let sse = false;
    // A stream's bytes reach the client as they come: the extension only observes them (observability mode).
    return {
      headers: (status, headers) => {
        out = headers;
        sse = isEventStream(answerReadAs(headers, status, ctx.stream)['content-type']);
        if (sse && plan.events.has('ResponseHeaders')) call.post({ response_headers: { headers: headerMap([[':status', String(status)]], headers), end_of_stream: false } });
      },
      body: (body, status) =>
        responseCallout(call, status, out, body, plan).catch((err: unknown) => {
          failed(ctx, err);
          return body;
        }),
      ...(plan.events.has('ResponseBody') && {
        event: (data: string) => {
          call.post({ response_body: { body: Buffer.from(`data: ${data}\n\n`), end_of_stream: false } });
          return data;
        },
        end: () => {
          if (sse) call.post({ response_body: { body: EMPTY, end_of_stream: true } });
        },
      }),
    };
  };

  return {
    ...(requestPhase && {
      authenticate: async (ctx: RequestContext) => {
        try {
          await requestCallout(open(ctx), ctx, plan);
        } catch (err) {
          failed(ctx, err);
        }
      },
    }),
    ...(responsePhase && { respond }),
    complete: (ctx: RequestContext) => {
      calls.get(ctx)?.end();
      calls.delete(ctx);
    },
    close: () => client.close(),
  };
}
