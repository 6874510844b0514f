// Embedding a prompt through an OpenAI-compatible /v1/embeddings endpoint, within a deadline, as a unit vector.
import { request } from 'undici';
import type { OutboundHeaders } from '../../../config/apim-kinds.js';
import { normalize } from '../../../store/vectors/vector-index.js';
import { resolveHeaders } from '../../secret-source.js';

export interface EmbeddingsEndpoint {
  url: string;
  model: string;
  headers: OutboundHeaders;
  timeout: number;
}

export type Embed = (text: string) => Promise<Float32Array>;

/** @example const embed = embeddingsClient({ url: 'http://sim:8000/v1/embeddings', model: 'm', headers: {}, timeout: 2000 }); */
export function embeddingsClient(endpoint: EmbeddingsEndpoint): Embed {
  const headers = { 'content-type': 'application/json', ...resolveHeaders(endpoint.headers, 'spec.embeddings.headers') };
  return async (text) => {
    const res = await request(endpoint.url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ model: endpoint.model, input: text }),
      signal: AbortSignal.timeout(endpoint.timeout),
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`the embeddings endpoint answered ${res.statusCode}`);
    }
    const answer = (await res.body.json()) as { data?: { embedding?: unknown }[] };
    const vector = answer.data?.[0]?.embedding;
    if (!Array.isArray(vector) || vector.length === 0 || !vector.every((x) => typeof x === 'number')) {
      throw new Error('the embeddings endpoint answered without data[0].embedding');
    }
    return normalize(vector);
  };
}
