// A stream that fails after its head went out: the fault becomes its last event, as the data plane and the ext_proc
// response phase both end it, so a client reads the same error either way.
import { gatewayError, type GatewayError } from './errors.js';

/** The model server finished inside an event cut short (SseRewriter.cutShort, isCutShort): that half event is no answer. */
export function endedInsideEvent(): GatewayError {
  return gatewayError('TG_ERR_UPSTREAM_ERROR', 'The model server ended the answer early (inside an event)');
}

/** The data of a chat or completions stream's error event for `fault`: a JSON answer's `error`, as vLLM sends one. */
export function errorEventData(fault: GatewayError): string {
  return JSON.stringify({ error: { message: fault.message, type: fault.type, code: fault.code } });
}

/**
 * The data of a Responses stream's `error` event for `fault`: OpenAI's fields (`type: "error"`, `sequence_number`,
 * `code`, `message`, `param`) and the fault as an `error` object too, which the SDKs that read a stream's `error` key
 * raise (openai-node, openai-python). A bare `{"error": ...}` failed the Vercel AI SDK's schema for Responses events:
 * its users saw a validation error instead of tollgate's message and code.
 */
export function responsesErrorData(fault: GatewayError, sequence: number): string {
  const error = { message: fault.message, type: fault.type, code: fault.code };
  return JSON.stringify({ type: 'error', sequence_number: sequence, code: fault.code, message: fault.message, param: null, error });
}

/**
 * `fault` as a stream's last event: on a Responses stream (`sequence`: the number its next event would have) OpenAI's
 * `event: error` (responsesErrorData), on the others a JSON answer's `error` (vLLM's error event). `midEvent`: what went
 * before stopped inside an event, which a blank line ends first, otherwise the error would be glued to its half line.
 */
export function faultEvent(fault: GatewayError, midEvent: boolean, sequence?: number): string {
  const event =
    sequence === undefined ? `data: ${errorEventData(fault)}\n\n` : `event: error\ndata: ${responsesErrorData(fault, sequence)}\n\n`;
  return `${midEvent ? '\n\n' : ''}${event}`;
}
