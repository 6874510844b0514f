// Per-model request metrics under the Inference Extension's names (inference_objective_*), recorded once per request.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { RequestContext } from '../gateway/context.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const TOKEN_BUCKETS = [1, 8, 32, 128, 512, 1024, 2048, 4096, 8192, 16384, 32768, 131072];
const NTPOT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1];

type Child<T extends { labels: (...v: string[]) => unknown }> = ReturnType<T['labels']>;
type Hist = Histogram<'model_name' | 'target_model_name'>;
interface Children {
  total: Child<Counter<'model_name' | 'target_model_name'>>;
  duration: Child<Hist>;
  ttft: Child<Hist>;
  input: Child<Hist>;
  output: Child<Hist>;
  ntpot: Child<Hist>;
  running: Child<Gauge<'model_name'>>;
  requestSizes: Child<Hist>;
  responseSizes: Child<Hist>;
}

export class RequestMetrics {
  readonly #total: Counter<'model_name' | 'target_model_name'>;
  readonly #errors: Counter<'model_name' | 'target_model_name' | 'error_code'>;
  readonly #duration: Histogram<'model_name' | 'target_model_name'>;
  readonly #ttft: Histogram<'model_name' | 'target_model_name'>;
  readonly #input: Histogram<'model_name' | 'target_model_name'>;
  readonly #output: Histogram<'model_name' | 'target_model_name'>;
  readonly #ntpot: Histogram<'model_name' | 'target_model_name'>;
  readonly #running: Gauge<'model_name'>;
  readonly #requestSizes: Histogram<'model_name' | 'target_model_name'>;
  readonly #responseSizes: Histogram<'model_name' | 'target_model_name'>;

  constructor(registry: Registry) {
    const registers = [registry];
    const labels = ['model_name', 'target_model_name'] as const;
    this.#total = new Counter({ name: 'inference_objective_request_total', help: 'Requests per model', labelNames: labels, registers });
    this.#errors = new Counter({ name: 'inference_objective_request_error_total', help: 'Failed requests per model and error code', labelNames: [...labels, 'error_code'], registers });
    this.#duration = new Histogram({ name: 'inference_objective_request_duration_seconds', help: 'End-to-end request latency', labelNames: labels, buckets: LATENCY_BUCKETS, registers });
    this.#ttft = new Histogram({ name: 'inference_objective_request_ttft_seconds', help: 'Time to first response byte', labelNames: labels, buckets: LATENCY_BUCKETS, registers });
    this.#input = new Histogram({ name: 'inference_objective_input_tokens', help: 'Prompt tokens per request', labelNames: labels, buckets: TOKEN_BUCKETS, registers });
    this.#output = new Histogram({ name: 'inference_objective_output_tokens', help: 'Output tokens per request', labelNames: labels, buckets: TOKEN_BUCKETS, registers });
    this.#ntpot = new Histogram({ name: 'inference_objective_normalized_time_per_output_token_seconds', help: 'Request latency divided by output tokens', labelNames: labels, buckets: NTPOT_BUCKETS, registers });
    this.#running = new Gauge({ name: 'inference_objective_running_requests', help: 'Requests in flight per model', labelNames: ['model_name'], registers });
    this.#requestSizes = new Histogram({ name: 'inference_objective_request_sizes', help: 'Request body bytes', labelNames: labels, buckets: [64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304], registers });
    this.#responseSizes = new Histogram({ name: 'inference_objective_response_sizes', help: 'Response body bytes', labelNames: labels, buckets: [64, 256, 1024, 4096, 16384, 65536, 262144, 1048576], registers });
  }

  /** prom-client hashes a label set on every call; the children for a (model, target) pair are looked up once. */
  readonly #children = new Map<string, Children>();

  #for(model: string, target: string): Children {
    const key = `${model}\u0000${target}`;
    let c = this.#children.get(key);
    if (!c) {
      const l = [model, target];
      c = {
        total: this.#total.labels(...l),
        duration: this.#duration.labels(...l),
        ttft: this.#ttft.labels(...l),
        input: this.#input.labels(...l),
        output: this.#output.labels(...l),
        ntpot: this.#ntpot.labels(...l),
        running: this.#running.labels(model),
        requestSizes: this.#requestSizes.labels(...l),
        responseSizes: this.#responseSizes.labels(...l),
      };
      this.#children.set(key, c);
    }
    return c;
  }

  started(model: string): void {
    this.#running.labels(model).inc();
  }

  /** Called once when a request that reached model lookup ends. */
  finished(ctx: RequestContext, errorCode: string | undefined): void {
    const model = ctx.model ?? '';
    const target = ctx.targetModel ?? '';
    const c = this.#for(model, target);
    const seconds = (performance.now() - ctx.start) / 1000;
    c.running.dec();
    c.total.inc();
    c.duration.observe(seconds);
    c.requestSizes.observe(ctx.bytesIn);
    if (errorCode) {
      this.#errors.labels(model, target, errorCode).inc();
      return;
    }
    c.responseSizes.observe(ctx.bytesOut);
    if (ctx.ttftMs !== undefined) c.ttft.observe(ctx.ttftMs / 1000);
    if (ctx.usage) {
      c.input.observe(ctx.usage.inputTokens);
      c.output.observe(ctx.usage.outputTokens);
      if (ctx.usage.outputTokens > 0) c.ntpot.observe(seconds / ctx.usage.outputTokens);
    }
  }
}
