// Prompts as the simulator sees them: token ids (for prefix-cache blocks and seeding) and the counts the gateway also computes.
import { countTextTokens, decodeTokens, encodeText, serializeMessages, type ChatMessage } from '../lib/tokenizer.js';

export interface Prompt {
  /** Token ids of the prompt text (chat framing tokens are counted but have no ids). */
  tokens: number[];
  /** prompt_tokens as reported in usage; equals countChatTokens / countTextTokens of the same input. */
  count: number;
}

/** Thrown for input the tokenizer refuses (e.g. special tokens such as <|endoftext|>). */
export class PromptError extends Error {}

export function chatPrompt(messages: ChatMessage[]): Prompt {
  const tokens = encode(serializeMessages(messages));
  // Three framing tokens per message, as countChatTokens counts them.
  return { tokens, count: tokens.length + 3 * messages.length };
}

export function textPrompt(prompt: string | number[]): Prompt {
  const tokens = typeof prompt === 'string' ? encode(prompt) : knownIds(prompt);
  return { tokens, count: tokens.length };
}

/** The ids, when the tokenizer knows every one (as vLLM checks them); a PromptError naming the first it does not. */
function knownIds(ids: number[]): number[] {
  const unknown = ids.find((id) => !decodes(id));
  if (unknown !== undefined) throw new PromptError(`Token id ${unknown} is out of vocabulary`);
  return ids;
}

function decodes(id: number): boolean {
  try {
    decodeTokens([id]);
    return true;
  } catch {
    return false;
  }
}

/** Text and token count of one embeddings input (a string or token ids). */
export function embeddingInput(input: string | number[]): { text: string; count: number } {
  if (typeof input === 'string') return { text: input, count: countOrThrow(input) };
  let text: string;
  try {
    text = decodeTokens(input);
  } catch {
    // Ids outside the vocabulary still embed deterministically, just not as words.
    text = input.join(' ');
  }
  return { text, count: input.length };
}

function encode(text: string): number[] {
  try {
    return encodeText(text);
  } catch (err) {
    throw new PromptError((err as Error).message);
  }
}

function countOrThrow(text: string): number {
  try {
    return countTextTokens(text);
  } catch (err) {
    throw new PromptError((err as Error).message);
  }
}
