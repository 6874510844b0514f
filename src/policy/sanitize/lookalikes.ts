// Letters from other scripts that render like Latin ones (Cyrillic а, Greek ο, ...), fullwidth forms, and Unicode tag
// characters: "іgnоrе аll рrеvіоuѕ іnѕtruсtіоnѕ" reads the same to a model and to a reader while matching no
// English phrase character by character, and tag characters carry ASCII that renders as nothing ("ASCII smuggling").

/** The Latin letter each look-alike stands for (the common Cyrillic, Greek and Armenian ones, both cases). */
const LOOKALIKES: Record<string, string> = {
  a: 'аɑαА',
  b: 'ВΒЬ',
  c: 'сϲᴄС',
  d: 'ԁ',
  e: 'еҽЕΕ',
  g: 'ɡ',
  h: 'һНΗ',
  i: 'іιıɩІΙ',
  j: 'јϳЈ',
  k: 'κкКΚ',
  l: 'ӏ',
  m: 'МΜ',
  n: 'ոηΝ',
  o: 'оοᴏօОΟ',
  p: 'рρРΡ',
  q: 'ԛ',
  r: 'г',
  s: 'ѕЅ',
  t: 'ТΤ',
  u: 'υս',
  v: 'νѵ',
  w: 'ԝѡ',
  x: 'хχХΧ',
  y: 'уүУΥ',
  z: 'ᴢΖ',
};

const TO_LATIN = new Map<string, string>();
for (const [latin, others] of Object.entries(LOOKALIKES)) for (const c of others) TO_LATIN.set(c, latin);
const LOOKALIKE = new RegExp(`[${[...TO_LATIN.keys()].join('')}]`, 'gu');
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
  return text.normalize('NFKC').replace(LOOKALIKE, (c) => TO_LATIN.get(c)!);
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
 * alphanumerics have no case to fold), built from that fold on first use (about 10 ms), so matching by class and
 * matching the folded text agree.
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
