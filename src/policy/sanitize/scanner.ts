// The sanitizer's filters compiled once from a policy's config: every enabled detector, in a fixed order (specific
// detectors before generic ones, so the specific type names an overlapping span).
import type { SanitizeFilters } from '../../config/apim-kinds.js';
import { denyListDetector } from './deny-list.js';
import type { Action, Detector, Finding } from './finding.js';
import { InjectionDetector } from './injection.js';
import { piiDetector } from './pii.js';
import { secretDetector } from './secrets.js';
import { PART_SEPARATOR, redactParts } from './text-parts.js';
import { UrlDetector } from './urls.js';

/** What one text of a prompt comes to: refused, redacted, or left as it is. */
export interface TextVerdict {
  /** Of the findings that block, one per category and type: what a refusal names (a million matches name one). */
  blocking: Finding[];
  /** Each part of the text with what the redacting filters found replaced, when that changed one and nothing blocks. */
  redacted?: string[];
}

/** A text to judge, as it may cross to another thread. */
export interface ScanText {
  /** Read joined by PART_SEPARATOR, as the model reads a message's text parts; redacted part by part. */
  parts: readonly string[];
  /** A URL the model server fetches (an image's, a file's): the maliciousUri filter alone reads it, as a signed URL's token is no leaked secret. */
  url: boolean;
}

export class Scanner {
  readonly #detectors: readonly Detector[];
  /** The maliciousUri filter alone, when on. */
  readonly #urls: readonly Detector[];
  readonly #blocks: boolean;

  constructor(filters: SanitizeFilters) {
    const d: Detector[] = [];
    let blocks = false;
    const add = (action: Action, detector: Detector) => {
      d.push(detector);
      blocks ||= action === 'block';
      return detector;
    };
    const { piAndJailbreak: pi, secrets, sensitiveData: pii, maliciousUri: uri, denyList } = filters;
    if (pi.action !== 'off') add(pi.action, new InjectionDetector(pi.action, pi.threshold));
    if (secrets.action !== 'off') add(secrets.action, secretDetector(secrets.action, secrets.types));
    if (pii.action !== 'off') add(pii.action, piiDetector(pii.action, pii.types));
    this.#urls = uri.action !== 'off' ? [add(uri.action, new UrlDetector(uri.action, uri))] : [];
    if (denyList && denyList.action !== 'off' && (denyList.words.length > 0 || denyList.patterns.length > 0)) {
      add(denyList.action, denyListDetector(denyList.action, denyList.words, denyList.patterns));
    }
    this.#detectors = d;
    this.#blocks = blocks;
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

  /** Whether an active filter blocks (what it cannot read, it cannot vouch for). */
  get blocks(): boolean {
    return this.#blocks;
  }

  /** The verdict on `text`, small whatever was found: it may cross to another thread. */
  judge(text: ScanText): TextVerdict {
    return this.#judge(text.parts, text.url ? this.#urls : this.#detectors);
  }

  #judge(parts: readonly string[], detectors: readonly Detector[]): TextVerdict {
    const findings: Finding[] = [];
    const text = parts.join(PART_SEPARATOR);
    for (const d of detectors) d.scan(text, findings);
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
    const redacted = redactParts(parts, findings);
    return redacted.every((r, i) => r === parts[i]) ? { blocking } : { blocking, redacted };
  }
}
