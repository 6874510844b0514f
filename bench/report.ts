// Benchmark output shared by every harness: an aligned table for the terminal, JSON, and a bar chart as SVG.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** A table row; a list (e.g. one value per round) prints joined by '/'. */
export type Row = Record<string, string | number | number[] | null | undefined>;

export function table(rows: Row[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => fmt(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i].length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

function fmt(v: Row[string]): string {
  if (v === null || v === undefined) return '-';
  if (Array.isArray(v)) return v.map(fmt).join('/');
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(3);
  return v;
}

export function writeJson(file: string, data: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(data, null, 2) + '\n');
}

/** Horizontal bars, one group per label, one bar per series. */
export function barChartSvg(title: string, unit: string, groups: { label: string; bars: { name: string; value: number }[] }[]): string {
  const palette = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1'];
  const names = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const max = Math.max(1e-9, ...groups.flatMap((g) => g.bars.map((b) => b.value)));
  const barH = 16;
  const labelW = 220;
  const plotW = 480;
  let y = 40;
  const parts: string[] = [];
  for (const g of groups) {
    parts.push(`<text x="8" y="${y + 12}" font-size="12" font-weight="bold">${esc(g.label)}</text>`);
    y += 18;
    for (const b of g.bars) {
      const w = (b.value / max) * plotW;
      const color = palette[names.indexOf(b.name) % palette.length];
      parts.push(`<text x="16" y="${y + 12}" font-size="11">${esc(b.name)}</text>`);
      parts.push(`<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH - 3}" fill="${color}"/>`);
      parts.push(`<text x="${labelW + w + 4}" y="${y + 11}" font-size="11">${b.value.toFixed(b.value >= 100 ? 0 : 2)} ${esc(unit)}</text>`);
      y += barH;
    }
    y += 8;
  }
  const height = y + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + plotW + 120}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="8" y="22" font-size="15" font-weight="bold">${esc(title)}</text>
${parts.join('\n')}
</svg>
`;
}

export function writeSvg(file: string, svg: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, svg);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
