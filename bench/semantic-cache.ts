// `bench semantic-cache`: how much faster a semantic-cache hit answers than the model, through a gateway in front of
// a simulated model server at time-scale 1 (real time). For each of N questions: the model asked directly, the
// question through the gateway (a miss: embedding + model, then stored), and a paraphrase (a hit). The target is a
// hit at least 20× faster than the model.
import { request } from 'undici';
import { manifestOf, type Manifest } from '../src/config/manifest.js';
import { startGateway } from '../src/gateway/gateway.js';
import { silentLogger } from '../src/lib/logger.js';
import { startSimFleet } from '../src/sim/index.js';
import { percentile } from './fixed-rate.js';
import { table, writeJson } from './report.js';

export interface SemanticCacheBenchOptions {
  /** Questions asked (each: model, miss, hit). Default 10. */
  questions?: number;
  /** Output length asked of the model. Default 128 tokens (a short chat answer; ShareGPT's mean is longer). */
  maxTokens?: number;
  json?: string;
  log?: (line: string) => void;
}

export interface LatencyStats {
  p50: number;
  mean: number;
  max: number;
}

export interface SemanticCacheBenchResult {
  model: LatencyStats;
  /** One embeddings call to the simulator, the floor under every lookup (its prefill costs at least 40 ms). */
  embedding: LatencyStats;
  miss: LatencyStats;
  hit: LatencyStats;
  /** model p50 / hit p50. */
  ratio: number;
  hits: number;
  questions: number;
}

const TOPICS = ['photosynthesis', 'the French Revolution', 'black holes', 'compound interest', 'the immune system', 'plate tectonics', 'machine learning', 'the Roman Empire', 'climate change', 'quantum computing', 'the water cycle', 'supply and demand'];

const manifest = (kind: string, name: string, spec: unknown): Manifest => manifestOf(kind, name, spec, 'bench');

function stats(ms: number[]): LatencyStats {
  const sorted = [...ms].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), mean: ms.reduce((a, b) => a + b, 0) / ms.length, max: sorted.at(-1)! };
}

async function timed(url: string, body: unknown, path = '/v1/chat/completions'): Promise<{ ms: number; cache?: string }> {
  const t0 = performance.now();
  const res = await request(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
  return { ms: performance.now() - t0, cache: res.headers['x-cache'] as string | undefined };
}

/** @example const r = await benchSemanticCache({ questions: 10 }); r.ratio >= 20 */
export async function benchSemanticCache(opts: SemanticCacheBenchOptions = {}): Promise<SemanticCacheBenchResult> {
  const log = opts.log ?? console.log;
  const questions = opts.questions ?? 10;
  const maxTokens = opts.maxTokens ?? 128;
  const fleet = await startSimFleet({ replicas: 1, model: 'bench-model', timeScale: 1 });
  const sim = fleet.urls[0];
  const gateway = await startGateway({
    configPaths: [],
    manifests: [
      manifest('APIMExtensionPolicy', 'bench', { targetRef: { name: 'tollgate' } }),
      manifest('InferencePool', 'sim', { endpoints: [sim] }),
      manifest('InferenceModel', 'bench-model', { modelName: 'bench-model', poolRef: { name: 'sim' } }),
      // No API keys in this bench, so the one tenant there is must be named explicitly.
      manifest('SemanticCacheLookup', 'faq', { embeddings: { url: `${sim}/v1/embeddings`, model: 'bench-model' }, similaritySearch: { threshold: 0.8 }, scope: 'global' }),
      manifest('SemanticCachePopulate', 'faq-populate', { ttlInSeconds: 600 }),
      manifest('ApimTemplate', 'bench', { templates: [{ policies: [{ kind: 'SemanticCacheLookup', name: 'faq' }, { kind: 'SemanticCachePopulate', name: 'faq-populate' }] }] }),
    ],
    port: 0,
    adminPort: 0,
    host: '127.0.0.1',
    watch: false,
    logger: silentLogger,
  });
  const model: number[] = [];
  const embedding: number[] = [];
  const miss: number[] = [];
  const hit: number[] = [];
  let hits = 0;
  try {
    const ask = (content: string) => ({ model: 'bench-model', max_tokens: maxTokens, ignore_eos: true, messages: [{ role: 'user', content }] });
    for (let i = 0; i < questions; i++) {
      const topic = `${TOPICS[i % TOPICS.length]} (part ${i + 1})`;
      model.push((await timed(sim, ask(`Please explain ${topic} in simple words.`))).ms);
      embedding.push((await timed(sim, { model: 'bench-model', input: `please explain ${topic}` }, '/v1/embeddings')).ms);
      miss.push((await timed(gateway.url, ask(`Please explain ${topic} in simple words.`))).ms);
      const h = await timed(gateway.url, ask(`please explain ${topic} in simple words`));
      if (h.cache === 'HIT') hits++;
      hit.push(h.ms);
    }
  } finally {
    await gateway.close();
    await fleet.close();
  }
  const result = { model: stats(model), embedding: stats(embedding), miss: stats(miss), hit: stats(hit), ratio: stats(model).p50 / stats(hit).p50, hits, questions };
  const row = (name: string, s: LatencyStats) => ({ path: name, p50_ms: s.p50, mean_ms: s.mean, max_ms: s.max });
  const rows = [row(`model, ${maxTokens} tokens (simulator, direct)`, result.model), row('embeddings (simulator, direct)', result.embedding), row('gateway, cache miss', result.miss), row('gateway, cache hit', result.hit)];
  log(table(rows, ['path', 'p50_ms', 'mean_ms', 'max_ms']));
  log(`hits: ${hits}/${questions}; a semantic-cache hit answers ${result.ratio.toFixed(1)}× faster than the model (target ≥ 20×)`);
  if (opts.json) writeJson(opts.json, result);
  return result;
}
