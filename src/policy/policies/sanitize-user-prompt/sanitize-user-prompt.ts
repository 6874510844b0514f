// SanitizeUserPrompt (what Model Armor does for Apigee): prompt injection and jailbreaks, sensitive data, secrets,
// malicious URLs and deny lists in the request's prompt text; each filter blocks (400) or redacts in place
// (`[REDACTED:<type>]`, the body re-serialized upstream); optionally an external classifier has the last word.
import { sanitizeUserPromptSpec } from '../../../config/apim-kinds.js';
import type { RequestContext } from '../../../gateway/context.js';
import { policyFault } from '../../../gateway/errors.js';
import type { Finding } from '../../sanitize/finding.js';
import { promptSlots, type PromptText } from '../../sanitize/prompt-slots.js';
import { OFF_LOOP_CHARS, judgeOffLoop } from '../../sanitize/scan-thread.js';
import { Scanner, type TextVerdict } from '../../sanitize/scanner.js';
import { classifierCheck, describe } from '../../sanitize/verdict.js';
import type { Policy, PolicyFactory } from '../../types.js';

export const SANITIZE_USER_PROMPT = 'sanitize-user-prompt';

export const SANITIZE_USER_PROMPT_FAULTS = {
  userPromptBlocked: 'steps.sanitize.UserPromptBlocked',
  classifierUnavailable: 'steps.sanitize.ClassifierUnavailable',
} as const;

function blocked(findings: readonly Finding[]): never {
  throw policyFault(400, SANITIZE_USER_PROMPT_FAULTS.userPromptBlocked, `The prompt was blocked: ${describe(findings)}`);
}

function refuseUnread(what: string): never {
  throw policyFault(400, SANITIZE_USER_PROMPT_FAULTS.userPromptBlocked, `The prompt was blocked: a prompt of ${what} cannot be checked; send it as text`);
}

/**
 * @example sanitizeUserPrompt('guard', { filters: { sensitiveData: { action: 'redact' }, piAndJailbreak: { action: 'block' } } }, deps)
 */
export const sanitizeUserPrompt: PolicyFactory = (name, spec) => {
  const s = sanitizeUserPromptSpec.parse(spec);
  const scanner = new Scanner(s.filters);
  const roles = new Set(s.roles.map((r) => r.toLowerCase()));
  const classifier = s.classifier ? classifierCheck(s.classifier, SANITIZE_USER_PROMPT_FAULTS.classifierUnavailable) : undefined;

  /**
   * Token ids are not decoded: the gateway's tokenizer (o200k_base) is not the model's, so the text it would judge is
   * not the text the model reads; prompt embeddings are no text at all. A policy that may block refuses both; one that
   * only redacts lets them through.
   */
  const refusesUnread = scanner.blocks || classifier !== undefined;

  /** Blocks, or redacts the texts in place, by the verdict on each; then the classifier, if any, has its say. */
  function judge(ctx: RequestContext, texts: PromptText[], verdicts: TextVerdict[]): void | Promise<void> {
    const blocking = verdicts.flatMap((v) => v.blocking);
    if (blocking.length > 0) blocked(blocking);
    for (let i = 0; i < verdicts.length; i++) {
      const redacted = verdicts[i].redacted;
      if (redacted === undefined) continue;
      texts[i].parts.forEach((part, j) => {
        if (part.text !== redacted[j]) part.set(redacted[j]);
      });
      ctx.bodyChanged = true;
    }
    const prose = texts.filter((t) => !t.url).flatMap((t) => t.parts.map((p) => p.text));
    if (!classifier || prose.length === 0) return;
    return classifier.check(prose.join('\n')).then((f) => {
      if (f) blocked([f]);
    });
  }

  return {
    type: SANITIZE_USER_PROMPT,
    name,
    /** Classifier calls that failed (let through with failOpen, otherwise refused with 503). */
    get classifierFailures() {
      return classifier?.failures ?? 0;
    },
    admit(ctx: RequestContext) {
      if (!ctx.body || (!scanner.active && !classifier)) return;
      const { texts, unreadable } = promptSlots(ctx.body, roles);
      if (unreadable && refusesUnread) refuseUnread(unreadable);
      if (!scanner.active) return judge(ctx, texts, []);
      let chars = 0;
      for (const t of texts) for (const part of t.parts) chars += part.text.length;
      const plain = texts.map((t) => ({ parts: t.parts.map((p) => p.text), url: t.url }));
      if (chars > OFF_LOOP_CHARS) return judgeOffLoop(spec, plain).then((verdicts) => judge(ctx, texts, verdicts));
      return judge(ctx, texts, plain.map((t) => scanner.judge(t)));
    },
  } satisfies Policy & { readonly classifierFailures: number };
};
