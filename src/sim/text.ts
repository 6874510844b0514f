// Deterministic generated text: one vocabulary piece per decode step, each exactly one token for the shared tokenizer.
import { seededRandom } from './hash.js';

// Every entry below, lower-case or capitalised with a leading space, and capitalised without one (the first word of
// an answer), is a single o200k token (a test checks it), so the text of N decode steps tokenizes back to N tokens.
const WORDS = (
  'the of and to in is that for it as was with be by on not this are or from at which but have an they you were ' +
  'there one all we their been has would when more will who if out so what up about into than them can only other ' +
  'new some could time these two may then do first any now such like our over even most made after also did many ' +
  'before must through back years where much your way well down should because each just those people how too ' +
  'little state good very make world still own see work long get here between both life being under never day same ' +
  'another know while last great old year off come since against go right used take three place around home ' +
  'small found thought went say part once general high upon every does left number course until always away ' +
  'something fact though water less public put think almost hand enough far head yet system better set ' +
  'nothing night end why called find going look later point next city give group young let room side social present ' +
  'given several order national second possible rather form important often things early white case become large ' +
  'big need four within along best ever least power development light thing family interest want mind country ' +
  'area others done although open problem sense service'
).split(' ');

const LOWER = WORDS.map((w) => ` ${w}`);
const CAPITAL = WORDS.map((w) => ` ${w[0].toUpperCase()}${w.slice(1)}`);
const FIRST = CAPITAL.map((w) => w.slice(1));

/** Yields the next piece of text each call; seeded, so the same seed gives the same text. */
export type TextSource = () => string;

export function textSource(seed: number): TextSource {
  const rand = seededRandom(seed);
  let first = true;
  let sentenceStart = true;
  let sincePunct = 0;
  return () => {
    // Punctuation only after a word, so no two punctuation pieces touch (they could merge into one token).
    if (sincePunct >= 3) {
      const r = rand();
      if (r < 0.12) {
        sincePunct = 0;
        sentenceStart = true;
        return '.';
      }
      if (r < 0.18) {
        sincePunct = 0;
        return ',';
      }
    }
    sincePunct++;
    const i = Math.floor(rand() * WORDS.length);
    if (sentenceStart) {
      sentenceStart = false;
      // The answer's first word has no space before it.
      const word = first ? FIRST[i] : CAPITAL[i];
      first = false;
      return word;
    }
    return LOWER[i];
  };
}

/**
 * An output length for a request without max_tokens: a log-normal draw (median ~150, long tail, like chat
 * answers in ShareGPT), clamped to [1, cap]; seeded, so the same prompt gets the same length.
 */
export function drawOutputLength(seed: number, cap: number): number {
  const rand = seededRandom(seed ^ 0x5bd1e995);
  const u1 = Math.max(rand(), 1e-12);
  const u2 = rand();
  const normal = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  const length = Math.round(Math.exp(Math.log(150) + 0.8 * normal));
  return Math.min(cap, Math.max(1, length));
}

/** For tests: every piece the generator can emit. */
export const VOCABULARY: readonly string[] = [...LOWER, ...CAPITAL, ...FIRST, '.', ','];
