// CSV export: RFC 4180 quoting, and text a spreadsheet would run as a formula kept as text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toCsv } from './stats-csv.js';

test('fields are quoted where a spreadsheet would split them, formulas are prefixed with an apostrophe', () => {
  const cases: [string | number | null, string][] = [
    ['llama', 'llama'],
    [null, ''],
    [-1, '-1'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    // Excel in much of Europe separates fields with ';'.
    ['a;b', '"a;b"'],
    ['=1+1', "'=1+1"],
    ['-2+3', "'-2+3"],
    // Each piece a reader splitting on ',', ';' or line ends regardless of quotes would make is guarded on its own.
    ['x,=cmd|\'/C calc\'!A0,y', `"x,'=cmd|'/C calc'!A0,y"`],
    ['x;=1+1', `"x;'=1+1"`],
    ['x;@SUM(1)', `"x;'@SUM(1)"`],
    ['a;=1+1;b', `"a;'=1+1;b"`],
    ['=1;+2', `"'=1;'+2"`],
    ['two\n=2+2', `"two\n'=2+2"`],
    ['two\r\n-3', `"two\r\n'-3"`],
    // A leading CR is both the start of the field and a line break before what follows it.
    ['\r=1', `"'\r'=1"`],
    ['\r\r@A1', `"'\r'\r'@A1"`],
    ['\n+1', `"\n'+1"`],
    ['\t=1', "'\t=1"],
    ['x; =1', '"x; =1"'],
    ['a=b', 'a=b'],
  ];
  for (const [value, field] of cases) assert.equal(toCsv(['v'], [{ v: value }]), `v\r\n${field}\r\n`, String(value));
});
