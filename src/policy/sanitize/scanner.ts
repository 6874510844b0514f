// The sanitizer's filters compiled once from a policy's config: every enabled detector, in a fixed order (specific
// detectors before generic ones, so the specific type names an overlapping span).
import type { SanitizeFilters } from '../../config/apim-kinds.js';
import { denyListDetector } from './deny-list.js';
import type { Detector, Finding } from './finding.js';
import { InjectionDetector } from './injection.js';
import { piiDetector } from './pii.js';
import { secretDetector } from './secrets.js';
import { UrlDetector } from './urls.js';

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
}
