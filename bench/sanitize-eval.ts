// `bench sanitize`: the sanitizer's built-in detectors against a labelled set of prompts (bench/data/
// sanitize-prompts.jsonl, written for tollgate): precision, recall and F1 per category, micro-averaged overall, and
// whether anything was flagged at all.
import { join } from 'node:path';
import { packageRoot } from '../src/lib/package-root.js';
import { readFileSync } from 'node:fs';
import { sanitizeUserPromptSpec } from '../src/config/apim-kinds.js';
import { Scanner } from '../src/policy/sanitize/scanner.js';
import type { Category } from '../src/policy/sanitize/finding.js';
import { FakeSecrets } from '../src/policy/sanitize/fake-secrets.js';
import { table, writeJson, type Row } from './report.js';

export const EVAL_CATEGORIES = ['injection', 'pii', 'secret', 'url'] as const;
export type EvalCategory = (typeof EVAL_CATEGORIES)[number];

export interface LabelledPrompt {
  text: string;
  labels: EvalCategory[];
  /**
   * `tuning` (the default): the prompts the detectors were developed against. `holdout`: written afterwards and
   * scored once, the detectors left as they were — the fairer estimate.
   */
  split?: 'tuning' | 'holdout';
}

export interface Score {
  tp: number;
  fp: number;
  fn: number;
  /** tp / (tp + fp); null when nothing was predicted. */
  precision: number | null;
  /** tp / (tp + fn); null when nothing was labelled. */
  recall: number | null;
  f1: number | null;
}

export interface EvalReport {
  prompts: number;
  perCategory: Record<EvalCategory, Score>;
  /** Micro-average over every (prompt, category) pair. */
  overall: Score;
  /** Prompt level: flagged at all vs labelled with anything. */
  flagged: Score;
  /** Prompts the detectors got wrong, for tuning (never printed by default: they hold secrets-shaped text). */
  mistakes: { text: string; labels: EvalCategory[]; predicted: EvalCategory[] }[];
}

// From the package root, not this file: compiled, this file lives in dist/ where bench/data is not copied.
export const DEFAULT_DATA = join(packageRoot(), 'bench', 'data', 'sanitize-prompts.jsonl');

/** Reads the JSONL set, expanding `{{kind}}` credential markers. @throws on a bad line or an unknown label. */
export function loadLabelled(file: URL | string = DEFAULT_DATA): LabelledPrompt[] {
  const secrets = new FakeSecrets();
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line, i) => {
      const item = JSON.parse(line) as LabelledPrompt;
      for (const l of item.labels) if (!(EVAL_CATEGORIES as readonly string[]).includes(l)) throw new Error(`line ${i + 1}: unknown label "${l}"`);
      return { text: secrets.expand(item.text), labels: item.labels, split: item.split ?? 'tuning' };
    });
}

export function score(tp: number, fp: number, fn: number): Score {
  const precision = tp + fp === 0 ? null : tp / (tp + fp);
  const recall = tp + fn === 0 ? null : tp / (tp + fn);
  const f1 = precision === null || recall === null || precision + recall === 0 ? null : (2 * precision * recall) / (precision + recall);
  return { tp, fp, fn, precision, recall, f1 };
}

/** Scores `predict` on `items`: per category, micro-averaged, and prompt-level. */
export function evaluate(items: readonly LabelledPrompt[], predict: (text: string) => ReadonlySet<EvalCategory>): EvalReport {
  const counts = Object.fromEntries(EVAL_CATEGORIES.map((c) => [c, { tp: 0, fp: 0, fn: 0 }])) as Record<EvalCategory, { tp: number; fp: number; fn: number }>;
  const any = { tp: 0, fp: 0, fn: 0 };
  const mistakes: EvalReport['mistakes'] = [];
  for (const item of items) {
    const predicted = predict(item.text);
    const labelled = new Set(item.labels);
    let wrong = false;
    for (const c of EVAL_CATEGORIES) {
      if (predicted.has(c) && labelled.has(c)) counts[c].tp++;
      else if (predicted.has(c)) counts[c].fp++;
      else if (labelled.has(c)) counts[c].fn++;
      else continue;
      if (predicted.has(c) !== labelled.has(c)) wrong = true;
    }
    if (predicted.size > 0 && labelled.size > 0) any.tp++;
    else if (predicted.size > 0) any.fp++;
    else if (labelled.size > 0) any.fn++;
    if (wrong) mistakes.push({ text: item.text, labels: item.labels, predicted: [...predicted] });
  }
  const perCategory = Object.fromEntries(EVAL_CATEGORIES.map((c) => [c, score(counts[c].tp, counts[c].fp, counts[c].fn)])) as Record<EvalCategory, Score>;
  const sum = (k: 'tp' | 'fp' | 'fn') => EVAL_CATEGORIES.reduce((n, c) => n + counts[c][k], 0);
  return { prompts: items.length, perCategory, overall: score(sum('tp'), sum('fp'), sum('fn')), flagged: score(any.tp, any.fp, any.fn), mistakes };
}

const CATEGORY_OF: Partial<Record<Category, EvalCategory>> = { injection: 'injection', pii: 'pii', secret: 'secret', url: 'url' };

/** The built-in detectors with their default settings, every filter on. */
export function builtInPredictor(): (text: string) => Set<EvalCategory> {
  const scanner = new Scanner(sanitizeUserPromptSpec.parse({}).filters);
  return (text) => {
    const out = new Set<EvalCategory>();
    for (const f of scanner.scan(text)) {
      const c = CATEGORY_OF[f.category];
      if (c) out.add(c);
    }
    return out;
  };
}

export function formatReport(r: EvalReport, title = 'labelled prompts'): string {
  const row = (name: string, s: Score): Row => ({ category: name, tp: s.tp, fp: s.fp, fn: s.fn, precision: s.precision, recall: s.recall, f1: s.f1 });
  const rows = [...EVAL_CATEGORIES.map((c) => row(c, r.perCategory[c])), row('overall (micro)', r.overall), row('any flagged', r.flagged)];
  return `${r.prompts} ${title}\n${table(rows, ['category', 'tp', 'fp', 'fn', 'precision', 'recall', 'f1'])}`;
}

/**
 * The `tollgate bench sanitize` entry: evaluates, prints the table, optionally writes JSON (without the mistakes).
 * @example await benchSanitize({ json: 'bench/results/sanitize.json' })
 */
export async function benchSanitize(
  opts: { data?: string; json?: string; showMistakes?: boolean; log?: (line: string) => void } = {},
): Promise<Record<'tuning' | 'holdout' | 'all', EvalReport>> {
  const log = opts.log ?? console.log;
  const items = loadLabelled(opts.data ?? DEFAULT_DATA);
  const predict = builtInPredictor();
  const reports = {
    tuning: evaluate(items.filter((i) => i.split !== 'holdout'), predict),
    holdout: evaluate(items.filter((i) => i.split === 'holdout'), predict),
    all: evaluate(items, predict),
  };
  log(formatReport(reports.tuning, 'tuning prompts (the detectors were developed against these)'));
  log(`\n${formatReport(reports.holdout, 'held-out prompts (written afterwards, scored once)')}`);
  log(`\n${formatReport(reports.all, 'prompts in all')}`);
  if (opts.showMistakes) for (const m of reports.all.mistakes) log(`  labelled [${m.labels}] predicted [${m.predicted}]: ${m.text.slice(0, 160)}`);
  if (opts.json) {
    const strip = (r: EvalReport) => ({ ...r, mistakes: undefined });
    writeJson(opts.json, { tuning: strip(reports.tuning), holdout: strip(reports.holdout), all: strip(reports.all) });
  }
  return reports;
}
