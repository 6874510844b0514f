// A prompt text held in several parts (a message's text parts) is judged as the model reads it, the parts joined by
// PART_SEPARATOR, and redacted part by part: what was found across a join is redacted in each part it covers.
import type { Finding } from './finding.js';
import { redact } from './redact.js';

/** What vLLM's chat templates put between a message's text parts. */
export const PART_SEPARATOR = '\n';

/**
 * Each part of `parts` with the redacting `findings` over it replaced; `findings` hold offsets into the parts joined
 * by PART_SEPARATOR, and one over the separator alone redacts nothing.
 * @example redactParts(['about project', 'falcon'], [{ ..., start: 6, end: 20 }]) // ['about [REDACTED:x]', '[REDACTED:x]']
 */
export function redactParts(parts: readonly string[], findings: readonly Finding[]): string[] {
  if (parts.length === 1) return [redact(parts[0], findings)];
  const starts: number[] = [];
  let at = 0;
  for (const part of parts) {
    starts.push(at);
    at += part.length + PART_SEPARATOR.length;
  }
  const perPart: Finding[][] = parts.map(() => []);
  // By start, so the part holding a finding's start only moves forward: a walk over parts and findings together.
  const spans = findings.filter((f) => f.action === 'redact').sort((a, b) => a.start - b.start);
  let first = 0;
  for (const f of spans) {
    while (first + 1 < parts.length && starts[first + 1] <= f.start) first++;
    for (let i = first; i < parts.length && starts[i] < f.end; i++) {
      const start = Math.max(f.start - starts[i], 0);
      const end = Math.min(f.end - starts[i], parts[i].length);
      if (start < end) perPart[i].push({ ...f, start, end });
    }
  }
  return parts.map((part, i) => redact(part, perPart[i]));
}
