// Sanitizing streamed text as it passes, per choice: the last `holdback` characters are held back, and the held
// text is scanned together with the 64 characters released before it (the context some detectors need, such as
// `password:` before a value). So an item of at most holdback − 1 characters (its closing boundary included) is
// redacted however the upstream split it across chunks. Released text is never revisited.
import type { Finding } from './finding.js';
import { redact } from './redact.js';
import type { Scanner } from './scanner.js';

export interface Emit {
  /** Text the client may have now (redacted). */
  text: string;
  /** Set when a blocking filter matched: the stream must end. */
  blocked?: Finding;
}

/** Released characters kept as context for the next scan. */
const CONTEXT = 64;
/** Beyond this many held characters (an unterminated private key block), the hold gives up and redacts all of it. */
const MAX_HOLD = 16_384;

interface Choice {
  held: string;
  /** The last CONTEXT characters released (as the model wrote them). */
  context: string;
  /**
   * The held length at the last scan, while a finding that runs on (an unterminated private key block) holds more
   * than the holdback; 0 otherwise. The text is scanned again only once the hold has doubled: rescanning it at every
   * event cost the square of its length (20,000 one-character events after a BEGIN PRIVATE KEY line: 9 s). Holding
   * releases nothing, so skipping a scan cannot let anything out; a block is found at the next scan or the flush.
   */
  growing: number;
}

export class StreamRedactor {
  readonly #scanner: Pick<Scanner, 'scan'>;
  readonly #holdback: number;
  readonly #choices = new Map<number, Choice>();

  /** `scanner`: the policy's, or one that reads a text as JSON (a tool call's arguments). */
  constructor(scanner: Pick<Scanner, 'scan'>, holdback: number) {
    this.#scanner = scanner;
    this.#holdback = holdback;
  }

  /** New text of choice `index`; returns what can be released now. */
  push(index: number, text: string): Emit {
    const c = this.#choice(index);
    const buf = c.held + text;
    if (c.growing > 0 && buf.length < 2 * c.growing && buf.length <= MAX_HOLD) {
      c.held = buf;
      return { text: '' };
    }
    const { findings, blocked } = this.#scan(c, buf);
    if (blocked) return { text: '', blocked };
    let cut = buf.length > MAX_HOLD ? buf.length : buf.length - this.#holdback;
    // Never release part of a finding: move the cut before any finding that straddles it (findings may overlap).
    for (let moved = true; moved && cut > 0 && cut < buf.length; ) {
      moved = false;
      for (const f of findings) {
        if (f.start < cut && f.end > cut) {
          cut = f.start;
          moved = true;
        }
      }
    }
    if (cut > 0 && cut < buf.length && isLowSurrogateAt(buf, cut)) cut--;
    const held = buf.length - Math.max(cut, 0);
    c.growing = held > this.#holdback ? held : 0;
    if (cut <= 0) {
      c.held = buf;
      return { text: '' };
    }
    c.held = buf.slice(cut);
    c.context = (c.context + buf.slice(0, cut)).slice(-CONTEXT);
    return { text: redact(buf.slice(0, cut), findings.filter((f) => f.end <= cut)) };
  }

  /** The choice is finished: everything held, scanned and redacted. */
  flush(index: number): Emit {
    const c = this.#choices.get(index);
    this.#choices.delete(index);
    if (!c || c.held === '') return { text: '' };
    const { findings, blocked } = this.#scan(c, c.held);
    return blocked ? { text: '', blocked } : { text: redact(c.held, findings) };
  }

  /** Choices with text still held. */
  pending(): number[] {
    return [...this.#choices.entries()].filter(([, c]) => c.held !== '').map(([i]) => i);
  }

  #choice(index: number): Choice {
    let c = this.#choices.get(index);
    if (!c) this.#choices.set(index, (c = { held: '', context: '', growing: 0 }));
    return c;
  }

  /** Findings in `buf` (offsets into it), scanned after the choice's released context; those wholly in it dropped. */
  #scan(c: Choice, buf: string): { findings: Finding[]; blocked?: Finding } {
    const shift = c.context.length;
    const findings: Finding[] = [];
    for (const f of this.#scanner.scan(c.context + buf)) {
      if (f.end <= shift) continue;
      findings.push({ ...f, start: Math.max(0, f.start - shift), end: f.end - shift });
    }
    return { findings, blocked: findings.find((f) => f.action === 'block') };
  }
}

function isLowSurrogateAt(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 0xdc00 && c <= 0xdfff;
}
