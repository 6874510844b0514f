// Token counts of texts seen recently. LLM traffic repeats itself (system prompts, tool definitions, few-shot
// examples, the earlier turns of a conversation), and counting a long text costs far more than hashing it once.
// Two generations bound the memory: when the young one holds `maxChars` characters it becomes the old one, and
// an old entry used again moves back to the young one, so texts in use survive and the rest are dropped.

/**
 * What an entry costs besides its characters, in characters: a Map entry, the string's header and the number, ~100
 * bytes. Counted by characters alone, 4 Mi one-character texts (a client's many tiny distinct messages) filled a
 * generation of 4 Mi characters with ~250 MB.
 */
export const ENTRY_OVERHEAD_CHARS = 48;

export class TokenCountCache {
  readonly #maxChars: number;
  #young = new Map<string, number>();
  #old = new Map<string, number>();
  #youngChars = 0;

  /** `maxChars` bounds each generation, entries' overhead included (so at most twice that is held). */
  constructor(maxChars: number) {
    this.#maxChars = maxChars;
  }

  /** The text's count if it is kept, undefined if it must be counted. */
  get(text: string): number | undefined {
    // Never kept (see set): not even hashed, which for a text of megabytes costs milliseconds.
    if (text.length + ENTRY_OVERHEAD_CHARS > this.#maxChars) return undefined;
    const young = this.#young.get(text);
    if (young !== undefined) return young;
    const old = this.#old.get(text);
    if (old !== undefined) this.#keep(text, old);
    return old;
  }

  /** Keeps the text's exact count, however it was counted (here, or in the token-count thread). */
  set(text: string, n: number): void {
    // A text longer than a generation would only evict everything else; one kept already (two requests counted it
    // at once) would be charged to the generation twice.
    if (text.length + ENTRY_OVERHEAD_CHARS > this.#maxChars || this.#young.has(text)) return;
    this.#keep(text, n);
  }

  #keep(text: string, n: number): void {
    const cost = text.length + ENTRY_OVERHEAD_CHARS;
    if (this.#youngChars + cost > this.#maxChars) {
      this.#old = this.#young;
      this.#young = new Map();
      this.#youngChars = 0;
    }
    this.#young.set(text, n);
    this.#youngChars += cost;
  }
}
