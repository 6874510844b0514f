// A tolerant reader for the few series the picker needs from a Prometheus text exposition (prom-client has no parser).

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/**
 * Every sample of the metric `name` in `text`, e.g. samplesOf(text, 'vllm:num_requests_waiting').
 * Scans with indexOf rather than splitting the page into lines: model servers export hundreds of
 * histogram lines the picker never reads, and it scrapes every endpoint 20 times a second.
 */
export function samplesOf(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  let from = 0;
  for (;;) {
    const at = text.indexOf(name, from);
    if (at < 0) return out;
    from = at + name.length;
    if (at > 0 && text.charCodeAt(at - 1) !== 10) continue; // not at a line start (comment, label value, longer name)
    const next = text.charCodeAt(from);
    if (next !== 123 /* { */ && next !== 32 && next !== 9) continue; // a longer metric name sharing this prefix
    let end = text.indexOf('\n', from);
    if (end < 0) end = text.length;
    const sample = parseSample(text, from, end);
    if (sample) out.push(sample);
    from = end;
  }
}

/** Parses `{labels} value [timestamp]` between start and end; null when the line is malformed. */
function parseSample(text: string, start: number, end: number): Sample | null {
  const labels: Record<string, string> = {};
  let i = start;
  if (text.charCodeAt(i) === 123) {
    i = parseLabels(text, i + 1, end, labels);
    if (i < 0) return null;
  }
  const rest = text.slice(i, end).trim();
  const token = rest.split(/\s+/, 1)[0];
  const value = parseValue(token);
  return Number.isNaN(value) && token !== 'NaN' ? null : { labels, value };
}

/** Reads `k="v",...}` into `labels`; returns the index after `}`, or -1 on malformed input. */
function parseLabels(text: string, i: number, end: number, labels: Record<string, string>): number {
  while (i < end) {
    while (i < end && (text[i] === ' ' || text[i] === ',')) i++;
    if (text[i] === '}') return i + 1;
    const eq = text.indexOf('=', i);
    if (eq < 0 || eq >= end || text[eq + 1] !== '"') return -1;
    const key = text.slice(i, eq).trim();
    let value = '';
    let j = eq + 2;
    for (; j < end; j++) {
      const ch = text[j];
      if (ch === '"') break;
      if (ch === '\\' && j + 1 < end) {
        const esc = text[++j];
        value += esc === 'n' ? '\n' : esc;
      } else value += ch;
    }
    if (j >= end) return -1;
    labels[key] = value;
    i = j + 1;
  }
  return -1;
}

function parseValue(token: string): number {
  if (token === '+Inf' || token === 'Inf') return Infinity;
  if (token === '-Inf') return -Infinity;
  return token === '' ? NaN : Number(token);
}
