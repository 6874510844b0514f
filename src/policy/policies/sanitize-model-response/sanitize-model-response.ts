// SanitizeModelResponse: the same filters over the model's answer. A whole JSON answer is scanned and redacted in
// place or replaced by a 403 fault; a stream is sanitized per choice with a holdback window (see StreamRedactor for
// the guarantee), and a blocking finding ends it with an SSE error event.
import { sanitizeModelResponseSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { policyFault } from '../../../gateway/errors.js';
import type { ResponseFlow } from '../../../gateway/hooks.js';
import type { Finding } from '../../sanitize/finding.js';
import { redact } from '../../sanitize/redact.js';
import { Scanner } from '../../sanitize/scanner.js';
import { StreamRedactor } from '../../sanitize/stream-redactor.js';
import { classifierCheck, describe, type ClassifierCheck } from '../../sanitize/verdict.js';
import type { ApimState, Policy, PolicyFactory } from '../../types.js';

export const SANITIZE_MODEL_RESPONSE = 'sanitize-model-response';

export const SANITIZE_MODEL_RESPONSE_FAULTS = {
  modelResponseBlocked: 'steps.sanitize.ModelResponseBlocked',
  classifierUnavailable: 'steps.sanitize.ClassifierUnavailable',
} as const;

interface Choice {
  index?: number;
  text?: unknown;
  finish_reason?: string | null;
  message?: { content?: unknown; refusal?: unknown };
  delta?: { content?: unknown };
}

interface Answer {
  object?: string;
  choices?: Choice[];
  error?: unknown;
}

const blockedFault = (findings: readonly Finding[]) => policyFault(403, SANITIZE_MODEL_RESPONSE_FAULTS.modelResponseBlocked, `The model's answer was blocked: ${describe(findings)}`);

/** The text fields of a whole answer: chat message content and refusal, completions text. */
function answerSlots(a: Answer): { get: () => string; set: (t: string) => void }[] {
  const out: { get: () => string; set: (t: string) => void }[] = [];
  for (const c of a.choices ?? []) {
    const m = c.message;
    if (m && typeof m.content === 'string') out.push({ get: () => m.content as string, set: (t) => (m.content = t) });
    if (m && typeof m.refusal === 'string') out.push({ get: () => m.refusal as string, set: (t) => (m.refusal = t) });
    if (typeof c.text === 'string') out.push({ get: () => c.text as string, set: (t) => (c.text = t) });
  }
  return out;
}

async function sanitizeBody(body: Buffer, scanner: Scanner, classifier: ClassifierCheck | undefined): Promise<Buffer> {
  let answer: Answer;
  try {
    answer = JSON.parse(body.toString('utf8')) as Answer;
  } catch {
    return body;
  }
  const slots = answerSlots(answer);
  let changed = false;
  for (const slot of slots) {
    const findings = scanner.scan(slot.get());
    const blocking = findings.filter((f) => f.action === 'block');
    if (blocking.length > 0) throw blockedFault(blocking);
    const text = redact(slot.get(), findings);
    if (text !== slot.get()) {
      slot.set(text);
      changed = true;
    }
  }
  if (classifier && slots.length > 0) {
    const f = await classifier.check(slots.map((s) => s.get()).join('\n'));
    if (f) throw blockedFault([f]);
  }
  return changed ? Buffer.from(JSON.stringify(answer)) : body;
}

/** The flow over a stream's events: content rewritten as the redactor releases it; an error event on a block. */
function streamFlow(scanner: Scanner, holdback: number): ResponseFlow {
  const redactor = new StreamRedactor(scanner, holdback);
  let ended = false;
  let last: Record<string, unknown> | undefined;
  const fail = (f: Finding) => {
    ended = true;
    const fault = blockedFault([f]);
    return JSON.stringify({ error: { message: fault.message, type: fault.type, code: fault.code } });
  };
  return {
    event(data) {
      if (ended) return null;
      if (data === '[DONE]') {
        // A server that never finished a choice: what is held goes out in place of [DONE], rather than never.
        const rest = redactor.pending().map((i) => ({ i, e: redactor.flush(i) }));
        if (rest.length === 0 || !last) return data;
        const blocked = rest.find((r) => r.e.blocked);
        if (blocked) return fail(blocked.e.blocked!);
        return JSON.stringify({ ...last, choices: rest.map(({ i, e }) => ({ index: i, delta: { content: e.text }, logprobs: null, finish_reason: null })) });
      }
      let chunk: Answer & Record<string, unknown>;
      try {
        chunk = JSON.parse(data) as Answer & Record<string, unknown>;
      } catch {
        return data;
      }
      if (!Array.isArray(chunk.choices) || chunk.choices.length === 0) return data;
      last = chunk;
      for (const c of chunk.choices) {
        const index = c.index ?? 0;
        const field = c.delta && typeof c.delta.content === 'string' ? 'delta' : typeof c.text === 'string' ? 'text' : null;
        let out = '';
        if (field) {
          const e = redactor.push(index, field === 'delta' ? (c.delta!.content as string) : (c.text as string));
          if (e.blocked) return fail(e.blocked);
          out = e.text;
        }
        if (c.finish_reason) {
          const e = redactor.flush(index);
          if (e.blocked) return fail(e.blocked);
          out += e.text;
        }
        if (field === 'delta') c.delta!.content = out;
        else if (field === 'text') c.text = out;
        else if (out !== '') c.delta = { ...c.delta, content: out };
      }
      return JSON.stringify(chunk);
    },
  };
}

/** @example sanitizeModelResponse('answer-guard', { filters: { secrets: { action: 'redact' } }, streamHoldback: 200 }, deps) */
export const sanitizeModelResponse: PolicyFactory = (name, spec) => {
  const s = sanitizeModelResponseSpec.parse(spec);
  const scanner = new Scanner(s.filters);
  const classifier = s.classifier ? classifierCheck(s.classifier, SANITIZE_MODEL_RESPONSE_FAULTS.classifierUnavailable) : undefined;

  return {
    type: SANITIZE_MODEL_RESPONSE,
    name,
    get classifierFailures() {
      return classifier?.failures ?? 0;
    },
    respond(ctx: RequestContext, _state: ApimState, status: number): ResponseFlow | undefined {
      if (status < 200 || status >= 300 || (!scanner.active && !classifier)) return undefined;
      if (ctx.stream) return streamFlow(scanner, s.streamHoldback);
      return { body: (body) => sanitizeBody(body, scanner, classifier) };
    },
  } satisfies Policy & { readonly classifierFailures: number };
};
