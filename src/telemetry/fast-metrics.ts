// Labelled counters, gauges and histograms for the per-request hot path. prom-client validates and hashes the
// label set on every observation (about 4 µs a request for tollgate's set, measured with --cpu-prof); these
// resolve a child once per label set and then cost an array increment. They register with prom-client's Registry, so
// /metrics stays one exposition, and also write their own text a series at a time (exposition()), which costs a
// fraction of a MetricValue object per sample and lets a big page be rendered in slices.
import type { Registry } from 'prom-client';

interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

export abstract class LabelledMetric<C> {
  readonly name: string;
  readonly help: string;
  readonly #labelNames: readonly string[];
  /** Each series with its labels and their exposition text, in the order they were first used. */
  readonly #children = new Map<C, { labels: Record<string, string>; text: string }>();
  /** One level of maps per label, so a lookup allocates no key string. */
  readonly #index = new Map<string, unknown>();

  constructor(opts: { name: string; help: string; labelNames: readonly string[]; registers: Registry[] }) {
    this.name = opts.name;
    this.help = opts.help;
    this.#labelNames = opts.labelNames;
    for (const r of opts.registers) r.registerMetric(this as never);
  }

  protected abstract create(): C;
  abstract get type(): string;
  protected abstract values(child: C, labels: Record<string, string>): MetricValue[];
  /** The series' sample lines, `labels` being its label pairs as written inside the braces ('' for none). */
  protected abstract lines(child: C, labels: string): string;

  /** The series for these label values (in labelNames order); keep it and use it per request where possible. */
  labels(...values: string[]): C {
    let level = this.#index;
    const last = Math.max(this.#labelNames.length, 1) - 1;
    for (let i = 0; i < last; i++) {
      const v = values[i] ?? '';
      let next = level.get(v) as Map<string, unknown> | undefined;
      if (!next) level.set(v, (next = new Map()));
      level = next;
    }
    const v = values[last] ?? '';
    let child = level.get(v) as C | undefined;
    if (child === undefined) {
      const labels: Record<string, string> = {};
      this.#labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
      child = this.create();
      const text = this.#labelNames.map((n) => `${n}="${escapeLabelValue(labels[n])}"`).join(',');
      this.#children.set(child, { labels, text });
      level.set(v, child);
    }
    return child;
  }

  /** Removes the series whose label values (in labelNames order) `drop` picks: those of a model a reload removed, say. */
  removeWhere(drop: (values: readonly string[]) => boolean): void {
    for (const [child, { labels }] of this.#children) {
      const values = this.#labelNames.map((n) => labels[n]);
      if (!drop(values)) continue;
      this.#children.delete(child);
      this.#unindex(this.#index, values, 0);
    }
  }

  /** Deletes the path of `values` from `level` down, with each map it leaves empty. */
  #unindex(level: Map<string, unknown>, values: readonly string[], i: number): void {
    const v = values[i] ?? '';
    if (i < this.#labelNames.length - 1) {
      const next = level.get(v) as Map<string, unknown>;
      this.#unindex(next, values, i + 1);
      if (next.size > 0) return;
    }
    level.delete(v);
  }

  /** prom-client's Registry reads metrics through get(). */
  get(): { name: string; help: string; type: string; values: MetricValue[]; aggregator: string } {
    const values: MetricValue[] = [];
    for (const [child, { labels }] of this.#children) values.push(...this.values(child, labels));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: 'sum' };
  }

  /**
   * The metric in the Prometheus text format, as prom-client's Registry writes it, in strings that concatenate to that
   * text: the HELP and TYPE lines, then one string a series, each starting with a newline. A series is read when the
   * iteration reaches it, so a caller may pause between strings (each series stays whole: its buckets, sum and count agree).
   */
  *exposition(): Generator<string> {
    yield `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}`;
    for (const [child, { text }] of this.#children) yield this.lines(child, text);
  }
}

function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(s: string): string {
  return escapeHelp(s).replace(/"/g, '\\"');
}

/** A sample value as prom-client writes it. */
function valueText(v: number): string {
  if (Number.isNaN(v)) return 'Nan';
  if (!Number.isFinite(v)) return v < 0 ? '-Inf' : '+Inf';
  return `${v}`;
}

function braced(labels: string): string {
  return labels ? `{${labels}}` : '';
}

export class CounterSeries {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
  dec(by = 1): void {
    this.value -= by;
  }
}

export class FastCounter extends LabelledMetric<CounterSeries> {
  get type(): string {
    return 'counter';
  }
  protected create(): CounterSeries {
    return new CounterSeries();
  }
  protected values(c: CounterSeries, labels: Record<string, string>): MetricValue[] {
    return [{ value: c.value, labels }];
  }
  protected lines(c: CounterSeries, labels: string): string {
    return `\n${this.name}${braced(labels)} ${valueText(c.value)}`;
  }
}

export class FastGauge extends FastCounter {
  override get type(): string {
    return 'gauge';
  }
}

export class HistogramSeries {
  readonly #bounds: readonly number[];
  /** Per bucket, not cumulative; the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const b = this.#bounds;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

export class FastHistogram extends LabelledMetric<HistogramSeries> {
  readonly #buckets: readonly number[];

  constructor(opts: { name: string; help: string; labelNames: readonly string[]; buckets: readonly number[]; registers: Registry[] }) {
    super(opts);
    this.#buckets = [...opts.buckets].sort((a, b) => a - b);
  }

  get type(): string {
    return 'histogram';
  }

  protected create(): HistogramSeries {
    return new HistogramSeries(this.#buckets);
  }

  protected values(h: HistogramSeries, labels: Record<string, string>): MetricValue[] {
    const out: MetricValue[] = [];
    let cumulative = 0;
    this.#buckets.forEach((le, i) => {
      cumulative += h.counts[i];
      out.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le }, value: cumulative });
    });
    out.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.count });
    out.push({ metricName: `${this.name}_sum`, labels, value: h.sum });
    out.push({ metricName: `${this.name}_count`, labels, value: h.count });
    return out;
  }

  protected lines(h: HistogramSeries, labels: string): string {
    const bucket = `\n${this.name}_bucket{${labels ? `${labels},` : ''}le="`;
    let out = '';
    let cumulative = 0;
    this.#buckets.forEach((le, i) => {
      cumulative += h.counts[i];
      out += `${bucket}${le}"} ${valueText(cumulative)}`;
    });
    const rest = braced(labels);
    return `${out}${bucket}+Inf"} ${valueText(h.count)}\n${this.name}_sum${rest} ${valueText(h.sum)}\n${this.name}_count${rest} ${valueText(h.count)}`;
  }
}
