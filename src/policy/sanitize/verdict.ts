// Turning findings into the policy's answer: the fault message names what was found (categories and types, never
// the text), and the classifier's verdict joins the built-in ones.
import type { ClassifierSpec } from '../../config/apim-kinds.js';
import { policyFault } from '../../gateway/errors.js';
import { classifierClient } from './classifier.js';
import type { Finding } from './finding.js';

const LABEL: Record<Finding['category'], string> = {
  injection: 'prompt injection',
  pii: 'sensitive data',
  secret: 'secret',
  url: 'malicious URL',
  denylist: 'denied term',
  classifier: 'classifier',
};

/** "prompt injection (ignoreInstructions), secret (awsAccessKey)" — what, never the matched text. */
export function describe(findings: readonly Finding[]): string {
  const seen = new Map<string, Set<string>>();
  for (const f of findings) {
    const label = LABEL[f.category];
    if (!seen.has(label)) seen.set(label, new Set());
    seen.get(label)!.add(f.type);
  }
  return [...seen].map(([label, types]) => `${label} (${[...types].join(', ')})`).join(', ');
}

export interface ClassifierCheck {
  /** The classifier's finding when its score reaches the threshold; undefined when below, or failed open. */
  check(text: string): Promise<Finding | undefined>;
  /** Calls that failed or timed out (and were let through, or refused when failing closed). */
  readonly failures: number;
}

/** @throws the 503 `unavailableCode` fault when the classifier fails and failOpen is false. */
export function classifierCheck(spec: ClassifierSpec, unavailableCode: string): ClassifierCheck {
  const classify = classifierClient(spec);
  let failures = 0;
  return {
    get failures() {
      return failures;
    },
    async check(text) {
      let score: number;
      try {
        score = await classify(text);
      } catch {
        failures++;
        if (spec.failOpen) return undefined;
        throw policyFault(503, unavailableCode, 'The content classifier could not answer');
      }
      return score >= spec.threshold ? { category: 'classifier', type: 'classifier', start: 0, end: text.length, action: 'block' } : undefined;
    },
  };
}
