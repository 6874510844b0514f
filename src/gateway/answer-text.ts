// The text a model generated in a whole JSON answer (chat, completions, Responses), for an answer whose server reported
// no usage: its output tokens are then counted from this text (estimated-usage.ts), as LiteLLM and Portkey count an
// answer without usage, rather than charged at the output cap while its usage record says nothing.
import { messageText, toolCallsText, type ChatMessage } from '../lib/tokenizer.js';

type Choice = { message?: { content?: unknown; reasoning_content?: unknown; reasoning?: unknown; refusal?: unknown; tool_calls?: unknown }; text?: unknown };
type Part = { text?: unknown; refusal?: unknown };
type OutputItem = { type?: unknown; content?: unknown; summary?: unknown; name?: unknown; arguments?: unknown };
type Answer = { object?: unknown; status?: unknown; choices?: unknown; output?: unknown };

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** The texts of a content or summary list (`output_text`, `refusal`, `reasoning_text`, `summary_text` parts). */
function partsText(parts: unknown): string {
  if (!Array.isArray(parts)) return '';
  let out = '';
  for (const p of parts as (Part | null)[]) out += str(p?.text) + str(p?.refusal);
  return out;
}

function choiceText(c: Choice | null): string {
  const m = c?.message;
  if (m === null || typeof m !== 'object') return str(c?.text);
  return messageText(m.content as ChatMessage['content']) + str(m.reasoning_content) + str(m.reasoning) + str(m.refusal) + toolCallsText(m.tool_calls);
}

function itemText(item: OutputItem | null): string {
  if (item?.type === 'function_call' || item?.type === 'custom_tool_call') return `${str(item.name)}(${str(item.arguments)})`;
  return partsText(item?.content) + partsText(item?.summary);
}

/**
 * The generated text of every choice or output item, joined; undefined for a body that is not such an answer, and
 * for a Responses answer that is not over (a `background: true` creation answers `queued` and generates later:
 * counted now, it would be charged nothing for what it goes on to generate).
 */
export function generatedText(body: Buffer): string | undefined {
  let answer: Answer;
  try {
    answer = JSON.parse(body.toString('utf8')) as Answer;
  } catch {
    return undefined;
  }
  if (answer === null || typeof answer !== 'object') return undefined;
  if (Array.isArray(answer.choices)) return (answer.choices as (Choice | null)[]).map(choiceText).join('');
  if (answer.object !== 'response' || !Array.isArray(answer.output)) return undefined;
  if (answer.status === 'queued' || answer.status === 'in_progress') return undefined;
  return (answer.output as (OutputItem | null)[]).map(itemText).join('');
}
