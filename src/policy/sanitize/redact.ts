// Replacing what the redacting filters found with `[REDACTED:<type>]`; overlapping findings become one.
import type { Finding } from './finding.js';

/** `findings` in detector order; when two overlap, the earlier-starting (then the earlier-listed) names the span. */
export function redact(text: string, findings: readonly Finding[]): string {
  const spans = findings.filter((f) => f.action === 'redact').sort((a, b) => a.start - b.start);
  if (spans.length === 0) return text;
  let out = '';
  let at = 0;
  let current: { start: number; end: number; type: string } | undefined;
  for (const f of spans) {
    if (current && f.start < current.end) {
      current.end = Math.max(current.end, f.end);
      continue;
    }
    if (current) {
      out += `${text.slice(at, current.start)}[REDACTED:${current.type}]`;
      at = current.end;
    }
    current = { start: f.start, end: f.end, type: f.type };
  }
  out += `${text.slice(at, current!.start)}[REDACTED:${current!.type}]`;
  return out + text.slice(current!.end);
}
