// Tool-call arguments are JSON text the client parses and acts on: they are scanned as the text they spell (escapes
// read as the characters they stand for: `\nAKIA…` has no word boundary before the key as written), and a redaction
// never takes a string's closing quote or half an escape with it (`-phunter2"}` would leave JSON no client parses).
import type { Finding } from '../../sanitize/finding.js';
import type { Scanner } from '../../sanitize/scanner.js';

type TextScanner = Pick<Scanner, 'scan'>;

const ESCAPED: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f' };
const HEX4 = /^[0-9a-fA-F]{4}$/;

/**
 * `text` with its escapes decoded, and where each decoded character starts in `text` (one more entry: its end). A
 * fragment of a stream may end inside an escape: its lone backslash is read as itself.
 */
function decode(text: string): { text: string; at: Int32Array } {
  const at = new Int32Array(text.length + 1);
  let out = '';
  let n = 0;
  for (let i = 0; i < text.length; ) {
    // The run up to the next escape as it is, then the escape.
    const escape = text.indexOf('\\', i);
    const stop = escape === -1 || escape + 1 === text.length ? text.length : escape;
    out += text.slice(i, stop);
    for (; i < stop; i++) at[n++] = i;
    if (i === text.length) break;
    at[n++] = i;
    if (text[i + 1] === 'u' && HEX4.test(text.slice(i + 2, i + 6))) {
      out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
      i += 6;
    } else {
      out += ESCAPED[text[i + 1]] ?? text[i + 1];
      i += 2;
    }
  }
  at[n] = text.length;
  return { text: out, at: at.subarray(0, n + 1) };
}

/** `scanner` over JSON text: findings in offsets of the text as written, each redaction within one string's characters. */
export function jsonTextScanner(scanner: TextScanner): TextScanner {
  return {
    scan(text) {
      if (!text.includes('\\')) return clipped(scanner.scan(text), text, null);
      const d = decode(text);
      return clipped(scanner.scan(d.text), d.text, d.at);
    },
  };
}

/**
 * Findings of the decoded text as offsets of the written one (`at`; null: the same), a redaction kept off the quotes
 * that delimit strings (a quote written as itself, not as `\"`): it stops before the first one it would take, or goes
 * when it held nothing else. A block ends the stream whatever its span.
 */
function clipped(findings: Finding[], text: string, at: Int32Array | null): Finding[] {
  const delimiter = (i: number) => text[i] === '"' && (!at || at[i + 1] - at[i] === 1);
  const out: Finding[] = [];
  for (const f of findings) {
    let { start, end } = f;
    if (f.action === 'redact') {
      while (start < end && delimiter(start)) start++;
      for (let i = start; i < end; i++) {
        if (delimiter(i)) {
          end = i;
          break;
        }
      }
      if (start === end) continue;
    }
    out.push(at ? { ...f, start: at[start], end: at[end] } : start === f.start && end === f.end ? f : { ...f, start, end });
  }
  return out;
}
