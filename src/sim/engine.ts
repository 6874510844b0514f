// The continuous-batching scheduler: a bounded waiting queue, a running batch, one timer per step for the whole batch.
import { realClock, type Clock } from './clock.js';
import { BLOCK_SIZE, KvCache, blocksFor } from './kv-cache.js';
import { decodeStepSeconds, prefillSeconds } from './latency-model.js';
import { LoraManager } from './lora.js';

export interface EngineOptions {
  maxNumSeqs: number;
  maxQueue: number;
  /** Prompt tokens prefilled per step (vLLM's max_num_batched_tokens); a longer prefill is split over steps. */
  maxBatchedTokens: number;
  kvBlocks: number;
  maxLoras: number;
  /** Simulated adapter load time in milliseconds, before time scaling. */
  loraLoadMs: number;
  /** Every simulated duration is divided by this. */
  timeScale: number;
  clock?: Clock;
}

export interface SequenceSpec {
  lora?: string;
  promptTokens: number;
  /** Chained hashes of the prompt's full blocks (promptBlockHashes). */
  blockHashes: readonly number[];
  /** Tokens to generate; 0 for prefill-only work such as embeddings. */
  outputTokens: number;
  /**
   * Called once per generated token, index 0 first, at the end of the step that produced it; `at` is that step's end
   * on the engine's clock (ms), which a late timer does not move.
   */
  onToken(index: number, at: number): void;
  /** Called once when the last token is out (not after cancel), with the end of that step. */
  onFinish(at: number): void;
}

export class Sequence {
  readonly spec: SequenceSpec;
  state: 'waiting' | 'running' | 'done' = 'waiting';
  generated = 0;
  /** Prompt tokens served from the prefix cache at first admission. */
  cachedTokens = 0;
  /** Tokens of its prefill still to compute: a prefill longer than a step's budget takes several steps. */
  prefillLeft = 0;
  blocks: number[] = [];

  constructor(spec: SequenceSpec) {
    this.spec = spec;
  }
}

interface Step {
  prefill: Sequence[];
  decode: Sequence[];
}

// When the process stalls longer than this, the step clock jumps forward instead of replaying the backlog at once.
const MAX_LAG_MS = 100;

export class Engine {
  readonly kv: KvCache;
  readonly loras: LoraManager;
  readonly maxNumSeqs: number;
  readonly maxQueue: number;
  /** Tokens in prefix-cache lookups and hits since start (vllm:prefix_cache_queries/hits_total). */
  prefixQueryTokens = 0;
  prefixHitTokens = 0;
  /**
   * Prompt tokens of sequences whose prefill completed, and tokens generated, since start (vllm:prompt_tokens_total,
   * vllm:generation_tokens_total): counted as vLLM counts them, step by step, so a cancelled sequence's count too.
   */
  promptTokens = 0;
  generationTokens = 0;

  #opts: EngineOptions;
  #clock: Clock;
  #waiting: Sequence[] = [];
  #running = new Set<Sequence>();
  #watermark: number;
  #step: Step | null = null;
  #stepEnd = 0;
  /** When an idle engine was given work: its first step starts there, however late the timer runs. */
  #wokeAt = 0;
  #cancelTimer: (() => void) | null = null;
  #closed = false;

  constructor(opts: EngineOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? realClock;
    this.maxNumSeqs = opts.maxNumSeqs;
    this.maxQueue = opts.maxQueue;
    this.kv = new KvCache(opts.kvBlocks);
    // vLLM keeps ~1% of blocks free at admission so running sequences can grow without immediate preemption.
    this.#watermark = Math.ceil(opts.kvBlocks * 0.01);
    this.loras = new LoraManager({
      maxLoras: opts.maxLoras,
      loadMs: opts.loraLoadMs / opts.timeScale,
      clock: this.#clock,
      onLoaded: () => this.#wake(),
    });
  }

  get waitingCount(): number {
    return this.#waiting.length;
  }

  get runningCount(): number {
    return this.#running.size;
  }

  /** Adapters of running sequences, and of waiting ones (vllm:lora_requests_info). */
  get runningLoras(): Set<string> {
    return loraNames(this.#running);
  }

  get waitingLoras(): Set<string> {
    return loraNames(this.#waiting);
  }

  /** Queues a sequence; null when the waiting queue is full (or the engine closed). */
  submit(spec: SequenceSpec): Sequence | null {
    return this.submitAll([spec])?.[0] ?? null;
  }

  /**
   * Queues one request's sequences (its n samples, which vLLM schedules as n requests), all or none: the queue's
   * bound is checked once per request, so a request with n above it is still served.
   */
  submitAll(specs: readonly SequenceSpec[]): Sequence[] | null {
    // Requests that will take a free batch slot at the next step do not count as waiting.
    const freeSlots = Math.max(0, this.maxNumSeqs - this.#running.size);
    if (this.#closed || this.#waiting.length >= this.maxQueue + freeSlots) return null;
    const seqs = specs.map((spec) => new Sequence(spec));
    this.#waiting.push(...seqs);
    this.#wake();
    return seqs;
  }

  /** Drops a sequence wherever it is, freeing its batch slot and blocks; its callbacks are not called again. */
  cancel(seq: Sequence): void {
    if (seq.state === 'waiting') {
      const i = this.#waiting.indexOf(seq);
      if (i >= 0) this.#waiting.splice(i, 1);
    } else if (seq.state === 'running') {
      this.#evict(seq);
    }
    seq.state = 'done';
  }

  close(): void {
    this.#closed = true;
    this.#cancelTimer?.();
    this.#cancelTimer = null;
    this.loras.close();
    for (const seq of [...this.#waiting, ...this.#running]) this.cancel(seq);
  }

  #wake(): void {
    if (this.#step === null && this.#cancelTimer === null && !this.#closed) {
      this.#wokeAt = this.#clock.now();
      this.#cancelTimer = this.#clock.setTimer(this.#tick, 0);
    }
  }

  // Steps are laid end to end on a virtual timeline, so timer lateness (1 ms granularity, event-loop lag) does
  // not slow the simulated server down: a late tick completes every step that should have ended by now.
  #tick = (): void => {
    this.#cancelTimer = null;
    const now = this.#clock.now();
    if (this.#step === null) {
      this.#stepEnd = this.#wokeAt;
      this.#plan();
    }
    while (this.#step !== null && this.#stepEnd <= now) {
      this.#complete(this.#step, this.#stepEnd);
      if (now - this.#stepEnd > MAX_LAG_MS) this.#stepEnd = now;
      this.#plan();
    }
    if (this.#step !== null) this.#cancelTimer = this.#clock.setTimer(this.#tick, this.#stepEnd - now);
  };

  /**
   * The next step: a decode token for every running sequence whose prefill is done, and prefill chunks within the
   * budget, first for prefills begun in earlier steps (vLLM schedules running requests first), then for newly
   * admitted sequences, the last of which may get only part of its prefill (vLLM's chunked prefill).
   */
  #plan(): void {
    const decode: Sequence[] = [];
    const prefill: Sequence[] = [];
    let budget = this.#opts.maxBatchedTokens;
    let computed = 0;
    let kvTokens = 0;
    for (const seq of this.#running) {
      if (seq.prefillLeft === 0) {
        decode.push(seq);
        kvTokens += seq.spec.promptTokens + seq.generated;
      } else if (budget > 0) {
        const chunk = Math.min(seq.prefillLeft, budget);
        seq.prefillLeft -= chunk;
        budget -= chunk;
        computed += chunk;
        prefill.push(seq);
      }
    }
    let seconds = decode.length > 0 ? decodeStepSeconds(decode.length, kvTokens) : 0;
    computed += this.#admit(prefill, budget);
    if (prefill.length > 0) seconds += prefillSeconds(computed);
    if (prefill.length === 0 && decode.length === 0) {
      this.#step = null;
      return;
    }
    this.#stepEnd += (seconds * 1000) / this.#opts.timeScale;
    this.#step = { prefill, decode };
  }

  /**
   * Moves waiting sequences into the batch (FIFO; LoRA-blocked ones are skipped) while `budget` tokens of prefill are
   * left this step; returns the tokens they compute in it.
   */
  #admit(admitted: Sequence[], budget: number): number {
    let computed = 0;
    const skipped: Sequence[] = [];
    let i = 0;
    for (; i < this.#waiting.length && this.#running.size < this.maxNumSeqs && budget > 0; i++) {
      const seq = this.#waiting[i];
      const { lora, blockHashes } = seq.spec;
      if (lora !== undefined && this.loras.prepare(lora) !== 'ready') {
        skipped.push(seq);
        continue;
      }
      // A preempted sequence recomputes its generated tokens too; at least one token is always computed, and a
      // sequence of no tokens counts no hit rather than -1 (a negative counter fails the whole metrics page).
      const tokens = seq.spec.promptTokens + seq.generated;
      const cached = Math.max(0, Math.min(this.kv.matchPrefix(blockHashes) * BLOCK_SIZE, tokens - 1));
      const uncached = tokens - cached;
      // A slot for the token it generates next; prefill-only work (embeddings) has none.
      const slots = tokens + (seq.generated < seq.spec.outputTokens ? 1 : 0);
      // The watermark keeps room for running sequences to grow; with none running, a sequence may take every block,
      // so any context the cache can hold at all is served.
      const alloc = this.kv.allocate(blockHashes, blocksFor(slots), this.#running.size === 0 ? 0 : this.#watermark);
      if (alloc === null) break;
      const chunk = Math.min(uncached, budget);
      budget -= chunk;
      seq.prefillLeft = uncached - chunk;
      if (seq.generated === 0) {
        seq.cachedTokens = cached;
        this.prefixQueryTokens += seq.spec.promptTokens;
        this.prefixHitTokens += cached;
      }
      seq.blocks = alloc.blocks;
      seq.state = 'running';
      if (lora !== undefined) this.loras.retain(lora);
      this.#running.add(seq);
      admitted.push(seq);
      computed += chunk;
    }
    if (i > 0) this.#waiting = skipped.length > 0 ? skipped.concat(this.#waiting.slice(i)) : this.#waiting.slice(i);
    return computed;
  }

  /** Ends the step that ends at `at`: a token for each sequence whose prefill it completed and each it decoded. */
  #complete(step: Step, at: number): void {
    for (const seq of step.prefill) if (seq.state === 'running' && seq.prefillLeft === 0) this.#emit(seq, at);
    for (const seq of step.decode) if (seq.state === 'running' && this.#grow(seq)) this.#emit(seq, at);
  }

  #emit(seq: Sequence, at: number): void {
    // The end of its first prefill; a preempted sequence's recompute is not counted again (nor by vLLM).
    if (seq.generated === 0) this.promptTokens += seq.spec.promptTokens;
    if (seq.generated < seq.spec.outputTokens) {
      this.generationTokens++;
      seq.spec.onToken(seq.generated++, at);
    }
    // onToken may have cancelled it (a client that hung up).
    if (seq.state === 'running' && seq.generated >= seq.spec.outputTokens) {
      this.#evict(seq);
      seq.state = 'done';
      seq.spec.onFinish(at);
    }
  }

  /** Makes room for one more token; when the cache is full, preempts the newest sequence (vLLM's recompute). */
  #grow(seq: Sequence): boolean {
    if (blocksFor(seq.spec.promptTokens + seq.generated + 1) <= seq.blocks.length) return true;
    for (;;) {
      const block = this.kv.append();
      if (block !== null) {
        seq.blocks.push(block);
        return true;
      }
      let newest: Sequence = seq;
      for (const s of this.#running) newest = s;
      this.#evict(newest);
      newest.state = 'waiting';
      this.#waiting.unshift(newest);
      if (newest === seq) return false;
    }
  }

  #evict(seq: Sequence): void {
    this.#running.delete(seq);
    this.kv.release(seq.blocks);
    seq.blocks = [];
    if (seq.spec.lora !== undefined) this.loras.release(seq.spec.lora);
  }
}

function loraNames(seqs: Iterable<Sequence>): Set<string> {
  const names = new Set<string>();
  for (const s of seqs) if (s.spec.lora !== undefined) names.add(s.spec.lora);
  return names;
}
