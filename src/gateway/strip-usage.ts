// Dropping the usage-only SSE event from a stream whose client did not ask for it: tollgate turned
// stream_options.include_usage on for its own token accounting, and the client must not see the difference.
import { StringDecoder } from 'node:string_decoder';

/** Holds back at most one incomplete event; every complete event except the usage-only one passes at once. */
export class UsageEventStripper {
  #pending = '';
  // A chunk may end inside a multi-byte character; the decoder keeps those bytes for the next one.
  readonly #decoder = new StringDecoder('utf8');

  push(chunk: Buffer): string {
    const text = this.#pending + this.#decoder.write(chunk);
    const cut = text.lastIndexOf('\n\n');
    if (cut === -1) {
      this.#pending = text;
      return '';
    }
    this.#pending = text.slice(cut + 2);
    return keep(text.slice(0, cut + 2));
  }

  end(): string {
    const rest = this.#pending + this.#decoder.end();
    this.#pending = '';
    return rest;
  }
}

/** With include_usage on, servers add `"usage":null` to every chunk; a client that did not ask never sees it. */
const NULL_USAGE = /,\s*"usage"\s*:\s*null/g;

function keep(text: string): string {
  if (!text.includes('"usage"')) return text;
  const events = text.replace(NULL_USAGE, '');
  if (!events.includes('"usage"')) return events;
  let out = '';
  for (const event of events.split('\n\n')) {
    if (event === '') continue;
    if (!isUsageOnly(event)) out += `${event}\n\n`;
  }
  return out;
}

function isUsageOnly(event: string): boolean {
  const data = event.split('\n').find((l) => l.startsWith('data:'));
  if (!data || !data.includes('"usage"')) return false;
  try {
    const ev = JSON.parse(data.slice(5)) as { choices?: unknown[]; usage?: unknown };
    return Array.isArray(ev.choices) && ev.choices.length === 0 && !!ev.usage;
  } catch {
    return false;
  }
}
