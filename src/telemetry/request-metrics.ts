// Per-model request metrics under the Inference Extension's names (inference_objective_*), recorded once per request,
// and tollgate_pool_* by the InferencePool the request was routed to: the Inference Extension's series carry no pool
// label, and a model served by two pools (an HTTPRoute canary split) cannot be divided between them by joining on
// the model name. Pools and models come from configuration, so the pool series are bounded as the others are.
import type { Registry } from 'prom-client';
import type { RuntimeConfig } from '../config/runtime-config.js';
import type { RequestContext } from '../gateway/context.js';
import { FastCounter, FastGauge, FastHistogram, type CounterSeries, type HistogramSeries } from './fast-metrics.js';
import { isSuccess } from '../gateway/http-status.js';

// Up to upstream.responseTimeout's default (10 min): above the top bucket every quantile reads as that bucket.
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const TOKEN_BUCKETS = [1, 8, 32, 128, 512, 1024, 2048, 4096, 8192, 16384, 32768, 131072];
const NTPOT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1];
const SIZE_BUCKETS = [64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304];

/** The series of one (pool, model, target model), resolved once. */
interface ModelSeries {
  total: CounterSeries;
  running: CounterSeries;
  duration: HistogramSeries;
  ttft: HistogramSeries;
  input: HistogramSeries;
  output: HistogramSeries;
  ntpot: HistogramSeries;
  requestSizes: HistogramSeries;
  responseSizes: HistogramSeries;
  poolTotal: CounterSeries;
  poolErrors: CounterSeries;
  poolDuration: HistogramSeries;
}

export class RequestMetrics {
  readonly #total: FastCounter;
  readonly #errors: FastCounter;
  readonly #running: FastGauge;
  readonly #duration: FastHistogram;
  readonly #ttft: FastHistogram;
  readonly #input: FastHistogram;
  readonly #output: FastHistogram;
  readonly #ntpot: FastHistogram;
  readonly #requestSizes: FastHistogram;
  readonly #responseSizes: FastHistogram;
  readonly #poolTotal: FastCounter;
  readonly #poolErrors: FastCounter;
  readonly #poolDuration: FastHistogram;
  /** pool → model → target model: found without building a key string per request. */
  readonly #series = new Map<string, Map<string, Map<string, ModelSeries>>>();

  constructor(registry: Registry) {
    const registers = [registry];
    const labelNames = ['model_name', 'target_model_name'];
    const histogram = (name: string, help: string, buckets: number[]) => new FastHistogram({ name, help, labelNames, buckets, registers });
    this.#total = new FastCounter({ name: 'inference_objective_request_total', help: 'Requests per model', labelNames, registers });
    this.#errors = new FastCounter({ name: 'inference_objective_request_error_total', help: 'Failed requests per model and error code', labelNames: [...labelNames, 'error_code'], registers });
    this.#running = new FastGauge({ name: 'inference_objective_running_requests', help: 'Requests in flight per model', labelNames: ['model_name'], registers });
    this.#duration = histogram('inference_objective_request_duration_seconds', 'End-to-end request latency', LATENCY_BUCKETS);
    this.#ttft = histogram('inference_objective_request_ttft_seconds', "Time to the first token: a stream's first data event, or an answer's first body byte", LATENCY_BUCKETS);
    this.#input = histogram('inference_objective_input_tokens', 'Prompt tokens per request', TOKEN_BUCKETS);
    this.#output = histogram('inference_objective_output_tokens', 'Output tokens per request', TOKEN_BUCKETS);
    this.#ntpot = histogram('inference_objective_normalized_time_per_output_token_seconds', 'Request latency divided by output tokens', NTPOT_BUCKETS);
    this.#requestSizes = histogram('inference_objective_request_sizes', 'Request body bytes', SIZE_BUCKETS);
    this.#responseSizes = histogram('inference_objective_response_sizes', 'Response body bytes', SIZE_BUCKETS);
    const poolLabels = ['pool', 'model_name'];
    this.#poolTotal = new FastCounter({ name: 'tollgate_pool_requests_total', help: 'Requests per InferencePool they were routed to, and model', labelNames: poolLabels, registers });
    this.#poolErrors = new FastCounter({ name: 'tollgate_pool_request_errors_total', help: 'Failed requests per InferencePool they were routed to, and model', labelNames: poolLabels, registers });
    this.#poolDuration = new FastHistogram({ name: 'tollgate_pool_request_duration_seconds', help: 'End-to-end request latency per InferencePool and model', labelNames: poolLabels, buckets: LATENCY_BUCKETS, registers });
  }

  #for(pool: string, model: string, target: string): ModelSeries {
    let byModel = this.#series.get(pool);
    if (!byModel) this.#series.set(pool, (byModel = new Map()));
    let byTarget = byModel.get(model);
    if (!byTarget) byModel.set(model, (byTarget = new Map()));
    let s = byTarget.get(target);
    if (!s) {
      s = {
        total: this.#total.labels(model, target),
        running: this.#running.labels(model),
        duration: this.#duration.labels(model, target),
        ttft: this.#ttft.labels(model, target),
        input: this.#input.labels(model, target),
        output: this.#output.labels(model, target),
        ntpot: this.#ntpot.labels(model, target),
        requestSizes: this.#requestSizes.labels(model, target),
        responseSizes: this.#responseSizes.labels(model, target),
        poolTotal: this.#poolTotal.labels(pool, model),
        // Resolved with the others, so a pool's error series reads 0 (not absent) before its first error.
        poolErrors: this.#poolErrors.labels(pool, model),
        poolDuration: this.#poolDuration.labels(pool, model),
      };
      byTarget.set(target, s);
    }
    return s;
  }

  /**
   * Drops the series of every pool, model and target model `config` does not serve: a reload removed them, and the
   * requests that recorded them are over. Left, each removed model kept ~130 series in every scrape for good.
   */
  retain(config: RuntimeConfig): void {
    const { pools, targets } = servedBy(config);
    const modelSeries = [this.#total, this.#errors, this.#duration, this.#ttft, this.#input, this.#output, this.#ntpot, this.#requestSizes, this.#responseSizes];
    for (const metric of modelSeries) metric.removeWhere(([model, target]) => !targets.has(pair(model, target)));
    this.#running.removeWhere(([model]) => !config.models.has(model));
    for (const metric of [this.#poolTotal, this.#poolErrors, this.#poolDuration]) metric.removeWhere(([pool, model]) => !pools.has(pair(pool, model)));
    // The series resolved per (pool, model, target model) are only a cache of labels(): one kept would count where no
    // scrape reads, and those still served are found again (the same children) at their next request.
    this.#series.clear();
  }

  started(model: string): void {
    this.#running.labels(model).inc();
  }

  /** Called once when a request that reached model lookup ends. */
  finished(ctx: RequestContext, errorCode: string | undefined): void {
    const model = ctx.model ?? '';
    const target = ctx.targetModel ?? '';
    // A metered request's model is resolved, and with it the pool (its HTTPRoute's draw, or the one serving it).
    const s = this.#for(ctx.modelConfig?.pool.name ?? '', model, target);
    const seconds = (performance.now() - ctx.start) / 1000;
    s.running.dec();
    s.total.inc();
    s.poolTotal.inc();
    s.duration.observe(seconds);
    s.poolDuration.observe(seconds);
    s.requestSizes.observe(ctx.bytesIn);
    if (errorCode) {
      this.#errors.labels(model, target, errorCode).inc();
      s.poolErrors.inc();
    }
    // An answer cut short after its first bytes (the client hung up, the model server died or timed out) still
    // delivered them, and its tokens are billed (usage records and token quotas count tollgate's estimate): the
    // histograms count it as the records do. A refusal, a failure before the first byte, or an error answer (a model
    // server's 4xx/5xx) answered nothing.
    if (errorCode && !(ctx.ttftMs !== undefined && isSuccess(ctx.status))) return;
    s.responseSizes.observe(ctx.bytesOut);
    if (ctx.ttftMs !== undefined) s.ttft.observe(ctx.ttftMs / 1000);
    if (ctx.usage) {
      s.input.observe(ctx.usage.inputTokens);
      s.output.observe(ctx.usage.outputTokens);
      // Time per token only of whole answers: a stalled stream's timeout is no generation speed.
      if (!errorCode && ctx.usage.outputTokens > 0) s.ntpot.observe(seconds / ctx.usage.outputTokens);
    }
  }
}

const pair = (a: string, b: string) => `${a}\u0000${b}`;

/** What `config` serves, as the series label it: (pool, model) and (model, target model) pairs. */
function servedBy(config: RuntimeConfig): { pools: Set<string>; targets: Set<string> } {
  const pools = new Set<string>();
  const targets = new Set<string>();
  for (const [model, served] of config.models) {
    for (const m of served) {
      pools.add(pair(m.pool.name, model));
      for (const target of m.target ? m.target.values : [model]) targets.add(pair(model, target));
    }
  }
  return { pools, targets };
}
