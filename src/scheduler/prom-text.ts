// A tolerant reader for the few series the picker needs from a Prometheus text exposition (prom-client has no parser).

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/**
 * Samples read per series at most; later lines of that series are skipped (of a series read for its newest sample
 * alone, see seriesOf, each line's value is looked at). A data-parallel server exports one line per engine rank (a few
 * dozen at most); a page of tens of thousands held the event loop 50 ms a scrape.
 */
export const MAX_SAMPLES_PER_SERIES = 1024;

/** Every sample of the metric `name` in `text`, e.g. samplesOf(text, 'vllm:num_requests_waiting'). */
export function samplesOf(text: string, name: string): Sample[] {
  return seriesOf(text, [name]).get(name)!;
}

/**
 * The samples of each of `names` in `text`, in one pass over the page that looks only at lines starting with one of
 * them: model servers export hundreds of histogram lines the picker never reads, and it scrapes every endpoint 20
 * times a second. A name inside a comment or a label value, or the prefix of a longer name, does not match.
 *
 * Of a name in `newest` only the sample with the greatest value is kept, from all its lines, whatever their number:
 * for a series whose value is when its label set was last current (vLLM's lora_requests_info), where the page lists
 * every label set the server ever had. Each line costs a look at its value; only the winner's labels are read, and
 * when they are malformed the series reads as absent (an older line would be stale, not current).
 */
export function seriesOf(text: string, names: readonly string[], newest: readonly string[] = []): Map<string, Sample[]> {
  const wanted = [...new Set(names)];
  const found = wanted.map((): Sample[] => []);
  const seen = wanted.map(() => 0);
  const latest = wanted.map((name) => newest.includes(name));
  // The newest line of each `latest` series so far: its value, where its labels start and where it ends.
  const topValue = wanted.map(() => -Infinity);
  const topStart = wanted.map(() => -1);
  const topEnd = wanted.map(() => -1);
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    for (let n = 0; n < wanted.length; n++) {
      const name = wanted[n];
      const after = start + name.length;
      const next = text.charCodeAt(after);
      if (next !== 123 /* { */ && next !== 32 && next !== 9) continue;
      if (!text.startsWith(name, start)) continue;
      if (latest[n]) {
        const value = valueAt(text, after, end);
        if (value > topValue[n]) {
          topValue[n] = value;
          topStart[n] = after;
          topEnd[n] = end;
        }
      } else if (seen[n]++ < MAX_SAMPLES_PER_SERIES) {
        // Counted whether or not the line parses, so malformed lines cost bounded work too.
        const sample = parseSample(text, after, end);
        if (sample) found[n].push(sample);
      }
      break; // names hold no `{` or blank, so no other wanted name matches this line
    }
    start = end + 1;
  }
  for (let n = 0; n < wanted.length; n++) {
    if (topStart[n] < 0) continue;
    const sample = parseSample(text, topStart[n], topEnd[n]);
    if (sample) found[n].push(sample);
  }
  return new Map(wanted.map((name, n) => [name, found[n]]));
}

/**
 * The value of the line whose labels (if any) start at `start`, without reading them: after the last `}` of the line
 * (none can follow the labels' own), looked for from the line's end. NaN when there is none to read.
 */
function valueAt(text: string, start: number, end: number): number {
  let i = start;
  if (text.charCodeAt(i) === 123) {
    i = end;
    while (i > start && text.charCodeAt(i - 1) !== 125 /* } */) i--;
    if (i === start) return NaN;
  }
  // The line's rest at once, as Number skips the blanks around a lone value (6.7 ms a 4 MiB page, not 7.8). A 0 or NaN
  // may be something else (nothing, a timestamp after the value, +Inf): those are read token by token.
  const value = Number(text.slice(i, end));
  return value !== 0 && !Number.isNaN(value) ? value : parseValue(valueToken(text, i, end));
}

/** Parses `{labels} value [timestamp]` between start and end; null when the line is malformed. */
function parseSample(text: string, start: number, end: number): Sample | null {
  const labels: Record<string, string> = {};
  let i = start;
  if (text.charCodeAt(i) === 123) {
    i = parseLabels(text, i + 1, end, labels);
    if (i < 0) return null;
  }
  const token = valueToken(text, i, end);
  const value = parseValue(token);
  return Number.isNaN(value) && token !== 'NaN' ? null : { labels, value };
}

/** The first token from `i` on, past blanks: a sample's value (a timestamp may follow it). */
function valueToken(text: string, i: number, end: number): string {
  while (i < end && isBlank(text.charCodeAt(i))) i++;
  let j = i;
  while (j < end && !isBlank(text.charCodeAt(j))) j++;
  return text.slice(i, j);
}

/** Space, tab, CR and other control characters: what separates the value from the timestamp and ends a CRLF line. */
function isBlank(code: number): boolean {
  return code <= 32;
}

/** Reads `k="v",...}` into `labels`; returns the index after `}`, or -1 on malformed input. */
function parseLabels(text: string, i: number, end: number, labels: Record<string, string>): number {
  while (i < end) {
    while (i < end && (text[i] === ' ' || text[i] === ',')) i++;
    if (text[i] === '}') return i + 1;
    const eq = text.indexOf('=', i);
    if (eq < 0 || eq >= end || text[eq + 1] !== '"') return -1;
    const key = text.slice(i, eq).trim();
    // Run by run between escapes, each found by indexOf within the line (a slice, so no search runs past it): one
    // character at a time, a label value of 4 MiB (an adapter list) took 15 ms.
    const line = text.slice(0, end);
    let value = '';
    let from = eq + 2; // the start of the value's unescaped run being read
    for (;;) {
      const quote = line.indexOf('"', from);
      if (quote < 0) return -1;
      const run = line.slice(from, quote);
      const backslash = run.indexOf('\\');
      if (backslash < 0) {
        labels[key] = value + run;
        i = quote + 1;
        break;
      }
      // The escaped character is on the line: the quote comes after it at the latest (then escaped itself).
      const esc = line[from + backslash + 1];
      value += run.slice(0, backslash) + (esc === 'n' ? '\n' : esc);
      from += backslash + 2;
    }
  }
  return -1;
}

function parseValue(token: string): number {
  if (token === '+Inf' || token === 'Inf') return Infinity;
  if (token === '-Inf') return -Infinity;
  return token === '' ? NaN : Number(token);
}
