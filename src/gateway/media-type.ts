// Media types are case-insensitive (RFC 9110 §8.3.1): `Text/Event-Stream` is a stream, which a case-sensitive test
// read as JSON (tollgate's own usage chunk then reached a client that had not asked for it).
const EVENT_STREAM = /^\s*text\/event-stream\s*(;|$)/i;

/**
 * A content-type header's value. undici gives one sent twice as an array (a stream so sent was read as JSON: its usage
 * chunk reached a client that had not asked for it, and a token quota kept its whole reservation); content-type has a
 * single value, and the first counts, as Node's http parser keeps it for a client.
 */
export function contentTypeOf(header: unknown): string | undefined {
  const value = Array.isArray(header) ? (header[0] as unknown) : header;
  return typeof value === 'string' ? value : undefined;
}

/** A media type without its parameters, lower-case: `Application/JSON; charset=utf-8` is `application/json`. */
export const mediaTypeOf = (type: string): string => type.split(';')[0].trim().toLowerCase();

/** Whether a content-type header (or a media type as written) is JSON: `application/json` or an `application/…+json`. */
export function isJsonMediaType(header: unknown): boolean {
  const contentType = contentTypeOf(header);
  if (contentType === undefined) return false;
  const media = mediaTypeOf(contentType);
  return media === 'application/json' || /^application\/[^/]+\+json$/.test(media);
}

/** Whether a content-type header names an SSE stream. */
export function isEventStream(header: unknown): boolean {
  const contentType = contentTypeOf(header);
  return contentType !== undefined && EVENT_STREAM.test(contentType);
}

/**
 * The headers an answer is read by: a 2xx answer to a streamed request that names no media type at all is the event
 * stream asked for (read as JSON, the usage chunk tollgate asked for reached a client that had not, and a token quota
 * kept its whole reservation). Any type it does name is kept: a JSON error body stays JSON.
 */
export function answerReadAs<H extends Record<string, unknown>>(headers: H, status: number, stream: boolean): H {
  if (!stream || headers['content-type'] !== undefined || status < 200 || status >= 300) return headers;
  return { ...headers, 'content-type': 'text/event-stream' };
}
