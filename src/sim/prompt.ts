// Prompts as the simulator sees them: token ids (for prefix-cache blocks and seeding) and the counts the gateway also computes.
import { promptLayout, toolsLayout } from '../lib/prompt-layout.js';
import { MAX_RUN, countChatTokens, countTextTokens, decodeTokens, encodeText, serializeMessages, type ChatMessage } from '../lib/tokenizer.js';

export interface Prompt {
  /**
   * Token ids of the prompt text; of a chat prompt, as a model server lays it out (promptLayout: tools, framed
   * messages, a digest per image), the text the gateway's prefix scorer hashes. None for a prompt past its budget.
   */
  tokens: number[];
  /**
   * prompt_tokens as reported in usage; equals countChatTokens (and the tool definitions' tokens, which the gateway does
   * not count) / countTextTokens of the same input. A prompt surely
   * past the budget it was read with has no ids and only some number above the budget here: the server refuses it,
   * and tokenizing megabytes of it would hold up every other request on the event loop for seconds.
   */
  count: number;
}

/** Thrown for input the tokenizer refuses (e.g. special tokens such as <|endoftext|>). */
export class PromptError extends Error {}

/**
 * `tools`: the request's tool definitions, as sent. Its count is countChatTokens' and the tokens of the tool
 * definitions, which a model server's template renders ahead of the messages (and counts in prompt_tokens); without
 * messages there is no prompt, tools or not.
 */
export function chatPrompt(messages: ChatMessage[], budget = Infinity, tools?: unknown): Prompt {
  if (messages.length === 0) return { tokens: [], count: 0 };
  const toolsText = toolsLayout(tools);
  // Three framing tokens per message, as countChatTokens counts them (the serialization's tokens and these).
  const framing = 3 * messages.length;
  const over = surelyOver(toolsText + serializeMessages(messages), budget - framing);
  if (over !== undefined) return { tokens: [], count: framing + over };
  const tokens = encode(promptLayout(messages, tools));
  return { tokens, count: countChatTokens(messages) + countOrThrow(toolsText, Infinity) };
}

export function textPrompt(prompt: string | number[], budget = Infinity): Prompt {
  if (typeof prompt !== 'string') return prompt.length > budget ? { tokens: [], count: prompt.length } : { tokens: knownIds(prompt), count: prompt.length };
  const over = surelyOver(prompt, budget);
  if (over !== undefined) return { tokens: [], count: over };
  const tokens = encode(prompt);
  return { tokens, count: tokens.length };
}

/**
 * Tokens a cut can add to the text before it. Only the tokenizer's pre-tokens at the cut change, and one is no longer
 * than a run (MAX_RUN) and a leading character, a token a character at worst: two such are the slack.
 */
const CUT_SLACK = 2 * (MAX_RUN + 2);

/** Characters of a text read per token of the budget before deciding on them alone: prose has ~4 a token, CJK ~1. */
const PREFIX_CHARS_PER_TOKEN = 8;

/**
 * A number above `budget` when the text surely holds more tokens than that, found in time that grows with the budget,
 * not with the text; undefined when only tokenizing it all tells (it is then at most budget × a pre-token long).
 * countTextTokens' budget stops the merging, not the reading: it still cuts and pre-tokenizes the whole text, seconds
 * of event loop for megabytes, and every other stream of the server waited behind one refusal.
 */
function surelyOver(text: string, budget: number): number | undefined {
  // No token is longer than a pre-token.
  if (text.length > budget * (MAX_RUN + 2)) return budget + 1;
  const headChars = (budget + CUT_SLACK + 1) * PREFIX_CHARS_PER_TOKEN;
  if (text.length <= headChars) return undefined;
  const head = countOrThrow(text.slice(0, headChars), budget + CUT_SLACK);
  return head > budget + CUT_SLACK ? head : undefined;
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

/** Text and token count of one embeddings input (a string or token ids); past `budget` tokens, as Prompt's count. */
export function embeddingInput(input: string | number[], budget = Infinity): { text: string; count: number } {
  if (typeof input === 'string') return { text: input, count: surelyOver(input, budget) ?? countOrThrow(input, budget) };
  if (input.length > budget) return { text: '', count: input.length };
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

function countOrThrow(text: string, budget: number): number {
  try {
    return countTextTokens(text, budget);
  } catch (err) {
    throw new PromptError((err as Error).message);
  }
}
