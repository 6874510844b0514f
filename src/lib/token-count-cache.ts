// Token counts of texts seen recently. LLM traffic repeats itself (system prompts, tool definitions, few-shot
// examples, the earlier turns of a conversation), and counting a long text costs far more than hashing it once.
// Two generations bound the memory: when the young one holds `maxChars` characters it becomes the old one, and
// an old entry used again moves back to the young one, so texts in use survive and the rest are dropped.

export class TokenCountCache {
  readonly #count: (text: string) => number;
  readonly #maxChars: number;
  #young = new Map<string, number>();
  #old = new Map<string, number>();
  #youngChars = 0;

  /** `count` is the exact counter; `maxChars` bounds each generation (so at most twice that is held). */
  constructor(count: (text: string) => number, maxChars: number) {
    this.#count = count;
    this.#maxChars = maxChars;
  }

  count(text: string): number {
    let n = this.#young.get(text);
    if (n !== undefined) return n;
    n = this.#old.get(text) ?? this.#count(text);
    // A text longer than a generation would only evict everything else: counted, not kept.
    if (text.length <= this.#maxChars) this.#keep(text, n);
    return n;
  }

  #keep(text: string, n: number): void {
    if (this.#youngChars + text.length > this.#maxChars) {
      this.#old = this.#young;
      this.#young = new Map();
      this.#youngChars = 0;
    }
    this.#young.set(text, n);
    this.#youngChars += text.length;
  }
}
