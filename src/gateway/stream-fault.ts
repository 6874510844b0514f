// A stream that fails after its head went out: the fault becomes its last event, as the data plane and the ext_proc
// response phase both end it, so a client reads the same error either way.
import { gatewayError, type GatewayError } from './errors.js';

/** The model server finished inside an event cut short (SseRewriter.cutShort, isCutShort): that half event is no answer. */
export function endedInsideEvent(): GatewayError {
  return gatewayError('TG_ERR_UPSTREAM_ERROR', 'The model server ended the answer early (inside an event)');
}

/**
 * `fault` as a stream's last event, shaped as a JSON answer's `error` (vLLM's error event). `midEvent`: what went
 * before stopped inside an event, which a blank line ends first, otherwise the error would be glued to its half line.
 */
export function faultEvent(fault: GatewayError, midEvent: boolean): string {
  const event = JSON.stringify({ error: { message: fault.message, type: fault.type, code: fault.code } });
  return `${midEvent ? '\n\n' : ''}data: ${event}\n\n`;
}
