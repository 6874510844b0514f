// The text of a model's answer, gathered for the access log when GatewaySettings logging.logPrompts is on (and
// only then: prompt and completion text never reach the logs otherwise). Chat, completions and responses answers,
// whole JSON bodies or streamed events; bounded, since answers can be long.

/** Characters kept of a prompt or a completion in a log line; the rest is cut and marked. */
export const MAX_LOGGED_TEXT = 8192;

export function clipText(text: string): string {
  return text.length > MAX_LOGGED_TEXT ? `${text.slice(0, MAX_LOGGED_TEXT)}…[truncated]` : text;
}

type Choice = { message?: { content?: unknown }; delta?: { content?: unknown }; text?: unknown };
type OutputItem = { content?: { type?: string; text?: unknown }[] };
type Answer = {
  choices?: Choice[];
  output?: OutputItem[];
  /** A responses stream event. */
  type?: string;
  delta?: unknown;
};

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * An answer or event as an object; one that is not JSON, or JSON that is no object, has no text. `null` is valid JSON:
 * reading its `choices` threw inside the proxy, and a logging switch turned a good answer into a 502.
 */
function parsed(json: string): Answer | undefined {
  try {
    const answer: unknown = JSON.parse(json);
    return typeof answer === 'object' && answer !== null ? (answer as Answer) : undefined;
  } catch {
    return undefined;
  }
}

export class CompletionText {
  #parts: string[] = [];
  #length = 0;

  get text(): string {
    return clipText(this.#parts.join(''));
  }

  /** A whole JSON answer (not streamed). */
  addAnswer(body: Buffer): void {
    const answer = parsed(body.toString('utf8'));
    if (!answer) return;
    if (Array.isArray(answer.choices)) for (const c of answer.choices) this.#add(str(c?.message?.content) || str(c?.text));
    if (Array.isArray(answer.output)) {
      for (const item of answer.output) if (Array.isArray(item?.content)) for (const part of item.content) if (part?.type === 'output_text') this.#add(str(part.text));
    }
  }

  /** The JSON of one streamed `data:` event. */
  addEvent(json: string): void {
    const event = parsed(json);
    if (!event) return;
    if (Array.isArray(event.choices)) for (const c of event.choices) this.#add(str(c?.delta?.content) || str(c?.text));
    else if (event.type === 'response.output_text.delta') this.#add(str(event.delta));
  }

  #add(s: string): void {
    // Collected just past the limit: enough for clipText to mark the cut, without holding a whole long answer.
    if (s === '' || this.#length > MAX_LOGGED_TEXT) return;
    this.#parts.push(s);
    this.#length += s.length;
  }
}
