// The sanitizer's filters compiled once from a policy's config: every enabled detector, in a fixed order (specific
// detectors before generic ones, so the specific type names an overlapping span).
import type { SanitizeFilters } from '../../config/apim-kinds.js';
import { denyListDetector } from './deny-list.js';
import type { Detector, Finding } from './finding.js';
import { InjectionDetector } from './injection.js';
import { piiDetector } from './pii.js';
import { redact } from './redact.js';
import { secretDetector } from './secrets.js';
import { UrlDetector } from './urls.js';

/** What one text of a prompt comes to: refused, redacted, or left as it is. */
export interface TextVerdict {
  /** Of the findings that block, one per category and type: what a refusal names (a million matches name one). */
  blocking: Finding[];
  /** The text with what the redacting filters found replaced, when that changed it and nothing blocks. */
  redacted?: string;
}

export class Scanner {
  readonly #detectors: readonly Detector[];

  constructor(filters: SanitizeFilters) {
    const d: Detector[] = [];
    const { piAndJailbreak: pi, secrets, sensitiveData: pii, maliciousUri: uri, denyList } = filters;
    if (pi.action !== 'off') d.push(new InjectionDetector(pi.action, pi.threshold));
    if (secrets.action !== 'off') d.push(secretDetector(secrets.action, secrets.types));
    if (pii.action !== 'off') d.push(piiDetector(pii.action, pii.types));
    if (uri.action !== 'off') d.push(new UrlDetector(uri.action, uri));
    if (denyList && denyList.action !== 'off' && (denyList.words.length > 0 || denyList.patterns.length > 0)) {
      d.push(denyListDetector(denyList.action, denyList.words, denyList.patterns));
    }
    this.#detectors = d;
  }

  /** Whether any filter is on (a policy with none does nothing per request). */
  get active(): boolean {
    return this.#detectors.length > 0;
  }

  scan(text: string): Finding[] {
    const out: Finding[] = [];
    for (const d of this.#detectors) d.scan(text, out);
    return out;
  }

  /** The scan's verdict on `text`, small whatever was found: it may cross to another thread. */
  judge(text: string): TextVerdict {
    const findings = this.scan(text);
    const blocking: Finding[] = [];
    const named = new Set<string>();
    for (const f of findings) {
      const key = `${f.category}:${f.type}`;
      if (f.action === 'block' && !named.has(key)) {
        named.add(key);
        blocking.push(f);
      }
    }
    if (blocking.length > 0 || findings.length === 0) return { blocking };
    const redacted = redact(text, findings);
    return redacted === text ? { blocking } : { blocking, redacted };
  }
}
