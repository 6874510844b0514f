// Media types are case-insensitive (RFC 9110 §8.3.1): `Text/Event-Stream` is a stream, which a case-sensitive test
// read as JSON (tollgate's own usage chunk then reached a client that had not asked for it).
const EVENT_STREAM = /^\s*text\/event-stream\s*(;|$)/i;

/** Whether a content-type header names an SSE stream. */
export function isEventStream(contentType: unknown): boolean {
  return typeof contentType === 'string' && EVENT_STREAM.test(contentType);
}
