// Letters from other scripts that render like Latin ones (Cyrillic а, Greek ο, ...), fullwidth forms, and Unicode tag
// characters: "іgnоrе аll рrеvіоuѕ іnѕtruсtіоnѕ" reads the same to a model and to a reader while matching no
// English phrase character by character, and tag characters carry ASCII that renders as nothing ("ASCII smuggling").
import { endianness } from 'node:os';

/**
 * The Latin letter each look-alike stands for (the common Cyrillic, Greek, Armenian and IPA ones). Every letter is
 * listed in both cases, each as it looks in its own case (Greek Η is h but η is n, Ν is n but ν is v, Υ is y but υ is
 * u; palochka Ӏ is I but ӏ is l): the text is folded before it is lower-cased, as lower-casing first would read Η as
 * n. A capital that looks like no Latin letter folds as its small letter does (Г as г), so case never decides
 * whether a word is read. lookalikes.test.ts holds the table to this.
 */
const LOOKALIKES: Record<string, string> = {
  a: 'аАɑⱭαΑ',
  b: 'ьЬвВβΒ',
  c: 'сСϲϹᴄ',
  d: 'ԁԀ',
  e: 'еЕҽҼεΕ',
  g: 'ɡꞬ',
  h: 'һҺнНΗ',
  i: 'іІιΙɩƖıӀ',
  j: 'јЈϳͿ',
  k: 'кКκΚ',
  l: 'ӏ',
  m: 'мМΜ',
  n: 'ոՈηΝ',
  o: 'оОοΟօՕᴏ',
  p: 'рРρΡ',
  q: 'ԛԚ',
  r: 'гГ',
  s: 'ѕЅ',
  t: 'тТτΤ',
  u: 'սՍυμ',
  v: 'ѵѴν',
  w: 'ԝԜѡѠ',
  x: 'хХχΧ',
  y: 'уУүҮΥ',
  z: 'ζΖᴢ',
};

const TO_LATIN = new Map<string, string>();
for (const [latin, others] of Object.entries(LOOKALIKES)) {
  for (const c of others) {
    // FOLDED below maps code units: a character beyond the BMP would remap the high surrogate it shares with others.
    if (c.length !== 1) throw new Error(`look-alike ${c} is beyond the BMP`);
    TO_LATIN.set(c, latin);
  }
}
/** NFKC turns lunate sigma ϲ and Ϲ into ς and Σ, which look like no Latin letter: they are folded before it. */
const BEFORE_NFKC = new RegExp(`[${[...TO_LATIN.keys()].filter((c) => c.normalize('NFKC') !== c).join('')}]`, 'gu');
/**
 * Each UTF-16 code unit as it folds: a look-alike to its Latin letter, the rest to itself. Applied after NFKC, as it
 * turns mathematical Greek (𝛂, 𝚨) into the letters listed.
 */
const FOLDED = new Uint16Array(0x10000).map((_, unit) => unit);
for (const [c, latin] of TO_LATIN) FOLDED[c.charCodeAt(0)] = latin.charCodeAt(0);
/** FOLDED's units back to text: a typed array holds them in the platform's byte order. */
const UTF16 = new TextDecoder(endianness() === 'LE' ? 'utf-16le' : 'utf-16be', { ignoreBOM: true });
/** Tag characters U+E0020–U+E007E spell the ASCII characters 0x20–0x7E. */
const TAG_RUN = /[\u{e0020}-\u{e007e}]+/gu;
const NON_ASCII = /[\u0080-\u{10ffff}]/u;

/** Whether the text has a character beyond ASCII (the only text look-alikes and tag characters can hide in). */
export const hasNonAscii = (text: string): boolean => NON_ASCII.test(text);

/**
 * The text as its letters look: compatibility forms folded (NFKC: fullwidth, mathematical alphanumerics, ligatures)
 * and look-alikes of Latin letters replaced by them. Only for matching: positions move.
 */
export function foldLookalikes(text: string): string {
  if (!hasNonAscii(text)) return text;
  const nfkc = text.replace(BEFORE_NFKC, (c) => TO_LATIN.get(c)!).normalize('NFKC');
  // Through a table, unit by unit: replace() with a call per look-alike took 7 times as long on Cyrillic text.
  const units = new Uint16Array(nfkc.length);
  for (let i = 0; i < nfkc.length; i++) units[i] = FOLDED[nfkc.charCodeAt(i)];
  return UTF16.decode(units);
}

/** Decoded per run: hidden instructions are sentences; a longer run is scored on its start. */
const MAX_TAGGED_CHARS = 4096;

/** The ASCII that runs of tag characters spell, one string per run (none for text without them). */
export function taggedText(text: string): string[] {
  if (!hasNonAscii(text)) return [];
  // Character by character, not spread as arguments: a run of 200,000 overflowed the call stack (RangeError).
  return (text.match(TAG_RUN) ?? []).map((run) =>
    Array.from(run.slice(0, 2 * MAX_TAGGED_CHARS), (c) => String.fromCharCode(c.codePointAt(0)! - 0xe0000)).join(''),
  );
}

/** Where compatibility forms of ASCII lie: Latin-1 to the enclosed alphanumerics (Ⓟ, 𝐩 and 🄿 among them). */
const FOLDED_FROM = 0xa0;
const FOLDED_TO = 0x1ffff;
let foldsTo: Map<string, string> | undefined;

/**
 * The characters `foldLookalikes` turns into each printable ASCII character (letters by their lower case, as math
 * alphanumerics have no case to fold), built from that fold on first use (tens of milliseconds), so matching by class
 * and matching the folded text agree.
 */
function foldedForms(): Map<string, string> {
  if (foldsTo) return foldsTo;
  foldsTo = new Map();
  for (let cp = FOLDED_FROM; cp <= FOLDED_TO; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const c = String.fromCodePoint(cp);
    const folded = foldLookalikes(c);
    if (folded.length !== 1 || folded < '!' || folded > '~') continue;
    const ascii = folded.toLowerCase();
    foldsTo.set(ascii, (foldsTo.get(ascii) ?? '') + c);
  }
  return foldsTo;
}

/**
 * A regular-expression class (for a case-insensitive `u` pattern) matching `c` and what looks like it: every
 * character `foldLookalikes` folds to it (fullwidth, mathematical and enclosed forms, look-alikes from other
 * scripts). Other characters come back escaped.
 */
export function lookalikeClass(c: string): string {
  const code = c.charCodeAt(0);
  if (c.length !== 1 || code < 0x21 || code > 0x7e) return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  return `[${c.replace(/[\]\\^-]/, '\\$&')}${foldedForms().get(c.toLowerCase()) ?? ''}]`;
}
