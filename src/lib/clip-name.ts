// Names clients choose (a model, a path, an objective) reach records, log lines, spans and error messages: a 5 MB
// "model" must not become a 5 MB record, log line or answer.

const MAX_NAME = 256;

/** A name a client chose, cut to what a record, a log line or an error message should carry. */
export function clipName(s: string): string;
export function clipName(s: string | undefined): string | undefined;
export function clipName(s: string | undefined): string | undefined {
  return s !== undefined && s.length > MAX_NAME ? s.slice(0, MAX_NAME) : s;
}
