// An external classifier for what the built-in detectors cannot judge: POST {"text"} → {"score": 0..1}, within a
// deadline. Whether a failure lets the text through is the policy's failOpen.
import { request } from 'undici';
import type { ClassifierSpec } from '../../config/apim-kinds.js';
import { resolveHeaders } from '../secret-source.js';

export type Classify = (text: string) => Promise<number>;

export function classifierClient(spec: ClassifierSpec): Classify {
  const headers = { 'content-type': 'application/json', ...resolveHeaders(spec.headers, 'spec.classifier.headers') };
  return async (text) => {
    const res = await request(spec.url, { method: 'POST', headers, body: JSON.stringify({ text }), signal: AbortSignal.timeout(spec.timeout) });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`the classifier answered ${res.statusCode}`);
    }
    const { score } = (await res.body.json()) as { score?: unknown };
    if (typeof score !== 'number' || !(score >= 0 && score <= 1)) throw new Error('the classifier answered without a score in [0, 1]');
    return score;
  };
}
