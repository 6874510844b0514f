// Multi-document YAML parsed as yaml's parseAllDocuments parses it, but with what a hostile text can cost bounded: the
// parser stops where nesting passes MAX_JSON_DEPTH, and its errors are made without stack traces.
import { Composer, Lexer, LineCounter, Parser, type Document, type DocumentOptions, type ParseOptions, type SchemaOptions } from 'yaml';
import { MAX_JSON_DEPTH } from '../lib/json-depth.js';

export interface YamlStream {
  /** The documents read, each with its errors (only those before the too-deep one when `tooDeep` is set). */
  docs: Document.Parsed[];
  /** Where the text first nests deeper than MAX_JSON_DEPTH; nothing after it was parsed. */
  tooDeep?: { line: number; col: number };
  /** `offset` as 1-based line and column, for error messages. */
  linePos(offset: number): { line: number; col: number };
}

const COLLECTIONS = new Set(['block-map', 'block-seq', 'flow-collection']);

/** The parser's stack holds the document, the collections it is inside, and at most one leaf (a scalar) on top. */
function collectionsOpen(stack: readonly { type: string }[]): number {
  const top = stack.at(-1);
  return stack.length - 1 - (top && !COLLECTIONS.has(top.type) ? 1 : 0);
}

/**
 * The depth is taken from the parser's own stack after each token, not guessed from the bytes beforehand: whether a `[`
 * opens a collection depends on quoting, plain-scalar continuation lines and block scalars, which only the lexer knows.
 * A megabyte of `[` (the parser slows with depth: 8 s for a million levels) now stops after 513 tokens.
 * @example parseYamlStream(text, { merge: true }).docs.map((d) => d.toJS())
 */
export function parseYamlStream(text: string, options: ParseOptions & DocumentOptions & SchemaOptions = {}): YamlStream {
  const lines = new LineCounter();
  const parser = new Parser(lines.addNewLine);
  let tooDeepAt: number | undefined;
  function* tokens() {
    lines.addNewLine(0); // as Parser.parse does
    for (const lexeme of new Lexer().lex(text)) {
      yield* parser.next(lexeme);
      // The length alone settles nearly every token: only a stack this deep is counted.
      if (parser.stack.length > MAX_JSON_DEPTH + 1 && collectionsOpen(parser.stack) > MAX_JSON_DEPTH) {
        tooDeepAt = parser.offset;
        return;
      }
    }
    yield* parser.end();
  }
  // A text of errors (`[[]][[]]…` is one per byte) made the composer capture a stack trace for each: 13 s for 400 KB,
  // against 0.15 s without. The composer runs synchronously, so nothing else sees the limit while it is 0.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  let docs: Document.Parsed[];
  try {
    docs = Array.from(new Composer(options).compose(tokens()));
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
  const { linePos } = lines;
  return { docs, ...(tooDeepAt === undefined ? {} : { tooDeep: linePos(tooDeepAt) }), linePos };
}
