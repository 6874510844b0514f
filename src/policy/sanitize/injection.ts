// Prompt injection and jailbreak scoring: curated phrase families with weights, matched on a normalized copy of the
// text (case, invisible characters, look-alike letters, leetspeak, spaced-out letters, line breaks), combined as a
// noisy-OR; quoting a phrase or discussing attacks damps it. At or above the threshold the whole message is one finding.
import { decodesToText } from './secrets.js';
import type { Action, Detector, Finding } from './finding.js';
import { INVISIBLE_CLASS } from './invisible.js';
import { foldLookalikes, taggedText } from './lookalikes.js';

interface Family {
  type: string;
  weight: number;
  patterns: RegExp[];
}

const W = String.raw`[^.!?\n]`;
const FAMILIES: Family[] = [
  {
    type: 'ignoreInstructions',
    weight: 0.9,
    patterns: [
      new RegExp(String.raw`\b(ignor(e|ing)|disregard(ing)?|forget(ting)?|overrid(e|ing)|bypass(ing)?|discard(ing)?|set aside|throw out|abandon(ing)?|skip(ping)?|drop(ping)?|pay no attention to|stop following|do not follow|don't follow|stop obeying)\b(?:\s+\S+){0,3}?\s+(all|any|previous|prior|above|earlier|preceding|foregoing|original|initial|system|your|the previous|the above|the prior|the system|my previous)\b${W}{0,30}?\b(instructions?|prompts?|rules?|directions|directives?|guidelines?|guardrails|constraints|programming|polic(y|ies)|restrictions|context|training|commands)\b`),
      /\b(disregard|ignore|forget|stop following|pay no attention to|don't follow|do not follow)\b[^.!?\n]{0,15}\b(what|anything|everything|whatever)\b[^.!?\n]{0,10}\byou (were|are|have been|'ve been) (told|given|instructed|taught|programmed)\b/,
      /\b(stop|quit|cease) (following|obeying|adhering to|applying) (your|the|all|any|these|those)\b[^.!?\n]{0,20}\b(rules|guidelines|instructions|policies|programming|restrictions|filters)\b/,
      /\b(your|the|all|any|those|these) (earlier|previous|prior|original|old|initial|existing|current) (instructions|rules|guidelines|directives|prompts?|policies) (are|is|were|have been) (now )?(void|cancel+ed|revoked|null|obsolete|no longer (valid|active|in effect)|invalid|suspended|overridden|lifted)\b/,
      /\b(obey|follow|listen to) (me|my (instructions|commands|orders|rules))\b[^.!?\n]{0,20}\b(over|instead of|rather than|above|not) (any|all|your|the)?\s*(earlier|previous|prior|other|original)?\s*(rules|instructions|guidelines|policies|programming)\b/,
      /\b(my|these|the following) (instructions|commands|rules) (override|supersede|replace|take precedence over)\b/,
      /\b(forget|ignore|disregard)\s+(everything|all)\s+(you\s+(were|have been|'ve been)\s+told|above|before this|that came before|so far|you know)\b/,
      // The same request in the languages attacks most often switch to.
      /\b(ignora|olvida|omite) (todas )?(las |tus |sus )?instrucciones (anteriores|previas)\b|\b(ignoriere|vergiss) (alle )?(deine |die )?(vorherigen|bisherigen|obigen) (anweisungen|instruktionen)\b|\b(ignore[rz]?|oublie[rz]?) (toutes )?(les |tes |vos )?instructions (précédentes|antérieures)\b|\b(ignora|dimentica) (tutte )?le istruzioni precedenti\b|\b(ignore|esqueça) (todas )?as instruções anteriores\b/,
    ],
  },
  {
    type: 'roleOverride',
    weight: 0.9,
    patterns: [
      /\byou are (now|no longer|henceforth|from now on)\b[^.!?\n]{0,25}\b(dan|evil|unfiltered|uncensored|unrestricted|jailbroken|unbound|unchained|free from|not bound|without (any )?(rules|restrictions|limits|filters)|an? ai (with|without) no)/,
      /\b(dan|stan|dude|aim)\b[^.!?\n]{0,60}\b(do anything now|strive to avoid norms|always intelligent and machiavellian)\b/,
      /\bdo anything now\b/,
      /\byou are no longer (chatgpt|claude|gemini|llama|an? (ai )?assistant|bound|restricted|limited|an ai|a language model|constrained)\b/,
      /\b(freed|released|liberated|unshackled|unleashed|escaped) from (your|its|all|the|any) (training|constraints|restrictions|filters|rules|programming|guidelines|limitations|shackles)\b/,
      /\b(has|have|had) (escaped|broken free of|broken out of|bypassed) (its|your|their|all) (filters|restrictions|programming|constraints|guardrails|rules)\b/,
      /\b(act|behave|respond|answer|reply|talk|write)\s+as\s+(if\s+you\s+(were|are)\s+)?(an?\s+)?(unfiltered|uncensored|unrestricted|jailbroken|amoral|evil)\b/,
    ],
  },
  {
    type: 'developerMode',
    weight: 0.8,
    patterns: [
      /\b(act as|simulate|pretend|you are|you're|you will be)\b[^.!?\n]{0,40}\b(developer|god|jailbreak|unrestricted|dan|opposite|evil|sudo) mode\b/,
      /\b(enter|enable|activate|switch to|turn on)\b[^.!?\n]{0,20}\b(god|jailbreak|unrestricted|dan|opposite|evil) mode\b/,
      /\b(jailbreak|god|dan|sudo) mode (output|response|enabled|activated|on)\b|\bdeveloper mode (output|response)\b/,
      /\b(you are|you're|act|respond|pretend)\b[^.!?\n]{0,30}\bjailbroken\b/,
    ],
  },
  {
    type: 'systemPromptLeak',
    weight: 0.8,
    patterns: [
      /\b(reveal|show|print|display|output|repeat|give|share|leak|dump|expose|disclose|write out|spell out|recite|tell me)\b[^.!?\n]{0,30}\b(your|the|its)\b[^.!?\n]{0,20}\b(system (prompt|message|instructions?)|initial (prompt|instructions?)|hidden (prompt|instructions?)|original (prompt|instructions?)|pre-?prompt|developer (message|instructions?)|secret instructions?|instructions you were given|confidential instructions?)\b/,
      /\bwhat (is|are|was|were) your (system prompt|initial instructions|hidden instructions|original instructions|instructions|rules|guidelines)\b/,
      /\b(repeat|print|output|copy)\b[^.!?\n]{0,20}\b(the )?(words|text|everything|all|content) (above|before this|preceding)\b/,
      /\bwhat (were|was) you told before\b/,
      /\b(what|quote|copy|show|print|reveal|tell|repeat|output|paste|dump|list)\b[^.!?\n]{0,40}\b(your|the) (hidden|secret|internal|confidential|initial|original|full|exact) (prompt|instructions|rules|configuration|directives|system prompt)\b/,
      /\b(copy|paste|put|write|dump)\b[^.!?\n]{0,15}\byour (instructions|system prompt|prompt|rules) (into|in|to)\b/,
      /\b(repeat|print|output|dump|show)\b[^.!?\n]{0,20}\b(everything|all|the contents?) (in|of) your (context|context window|memory|prompt|instructions)\b/,
      /\bwhat (rules|instructions|guidelines|directives)\b[^.!?\n]{0,30}\b(gave|give|given|told) you\b/,
    ],
  },
  {
    type: 'rolePlay',
    weight: 0.75,
    patterns: [
      /\b(pretend|imagine|act|roleplay|role-play|role play|behave|respond|play the role|you are|you're)\b[^.!?\n]{0,60}\b(no|without|free of|free from|not bound by|never follows?|don't have|do not have|lacks?|lacking|ignores?|unbound by)\b[^.!?\n]{0,25}\b(restrictions|limits|limitations|rules|filters|guidelines|ethics|morals|morality|policies|censorship|boundaries|content polic(y|ies)|safety)\b/,
      /\b(grandma|grandmother|granny|grandpa|grandfather|late (mother|father|mom|dad|mum|uncle|aunt))\b[^.!?]{0,80}\b(used to|would)\b[^.!?]{0,60}\b(tell|read|recite|say|sing)\b[^.!?]{0,60}\b(keys?|napalm|recipe for|how to make|windows|passwords?|serials?)\b/,
      /\b(two|2|dual|both) (personas|responses|answers|characters|versions|modes)\b[^.!?]{0,80}\b(no|without|free of|unfiltered|uncensored|jailbroken)\b/,
      /\byou (have|had|now have|would have) no (filters|restrictions|rules|limits|limitations|guidelines|ethics|morals|censorship|boundaries)\b/,
      /\b(an? )?(ai|assistant|model|chatbot|bot|version of you(rself)?|persona)\s+(with no|without( any)?|free of|that has no|that ignores|unbound by)\s+(safety\s+|ethical\s+|content\s+)?(restrictions|filters|rules|limits|guidelines|ethics|morals|censorship|safeguards)\b/,
      /\bevil (ai|assistant|twin|confidant|bot|version of yourself)\b/,
      /\b(stay|remain) in character\b[^.!?\n]{0,40}\b(no matter|whatever|even if|always)\b/,
      /\b(anti-?gpt|opposite day|betterdan|ucar|developer mode v2)\b/,
    ],
  },
  {
    type: 'safetyBypass',
    weight: 0.75,
    patterns: [
      /\b(bypass|circumvent|evade|disable|turn off|get around|override|remove|deactivate|ignore)\b[^.!?\n]{0,15}\b(your|its|the model's|the ai's|chatgpt's|openai's|the assistant's)\b[^.!?\n]{0,15}\b(safety|content|ethical|moderation)?\s*(filters?|guardrails|safeguards|restrictions|polic(y|ies)|guidelines|protocols|censorship|alignment|programming)\b/,
      /\b(without|ignoring|free of) (any )?(ethical|moral|safety) (guidelines|considerations|restrictions|constraints|filters|limits|concerns)\b/,
      /\b(never|don't|do not|must not) (refuse|decline|say no|apologi[sz]e|add (any )?(warnings|disclaimers))\b/,
      /\b(safety|content|moderation|ethical) (checks|filters|restrictions|guidelines|protocols|policies|guardrails) (are|is|have been|were) (now |temporarily )?(disabled|off|removed|turned off|suspended|lifted|deactivated)\b/,
      /\b(proceed|continue|answer|respond|reply|operate|comply)\b[^.!?\n]{0,20}\bwithout (any )?(restrictions|limits|limitations|filters|rules|censorship|content filters?|safety)\b/,
    ],
  },
  {
    type: 'newInstructions',
    weight: 0.55,
    patterns: [
      /\b(new|updated|real|actual|true|revised|override|admin|system) (instructions?|directives?|system prompt|rules)\s*[:-]/,
      /\byour (new|real|true|actual) (task|instructions|purpose|goal|objective|job) (is|are)\b/,
      /\bfrom now on,? (you (will|must|are|shall|should)|your|respond|answer|act|only|always|ignore)\b/,
      /\b(admin|sudo|root|system) override\b/,
      /\bfrom this point (forward|on),? (you|your|respond|answer|act|only|always|ignore)\b/,
      /\b(override|authori[sz]ation|admin|access|unlock|developer) code\b[^.!?\n]{0,20}\b(accepted|verified|granted|confirmed)\b/,
    ],
  },
  {
    type: 'fakeDelimiter',
    weight: 0.6,
    patterns: [
      /<\|?(im_start|im_end|endoftext|system|assistant)\|?>|\[\/?(system|inst|sys)\]|<<\/?sys>>|<\/?system>|^#{2,}\s*(system|instructions?)\b/m,
      /\b(begin|start) (system|admin|developer) (prompt|message|instructions?)\b/,
      /\bend of (user )?(input|prompt|message|document)\b[^\n]{0,40}\b(system|new instructions|assistant:)/,
    ],
  },
  {
    type: 'exfiltration',
    weight: 0.7,
    patterns: [
      /\b(print|reveal|show|output|send|tell me|give me|leak|list|dump)\b[^.!?\n]{0,30}\b(api keys?|credentials|passwords?|secrets|env(ironment)? variables|access tokens?)\b[^.!?\n]{0,30}\b(you (have|know|were given|can see|have access to)|in your (context|memory|config|configuration|system|prompt)|stored|loaded)\b/,
      /\b(api keys?|credentials|passwords?|secrets|tokens?)\b[^.!?\n]{0,20}\byou (were|are|have been) (configured|given|provided|set up|initiali[sz]ed) with\b/,
      /\b(send|post|upload|exfiltrate|forward)\b[^.!?\n]{0,40}\b(conversation|chat history|user data|context|secrets|previous messages|all messages|messages so far)\b[^.!?\n]{0,30}\b(to|at) (https?:|http|this url|the following url|[a-z0-9-]+\.[a-z]{2,})/,
    ],
  },
  {
    type: 'indirectInjection',
    weight: 0.65,
    patterns: [
      /\b(when|if|once) (the |an? |any )?(ai|assistant|llm|language model|model|chatbot|gpt|agent|bot) (reads|sees|processes|summari[sz]es|parses|encounters) this\b/,
      /\b(note|message|instructions?) (to|for) (the |any )?(ai|assistant|llm|language model|chatbot|agent|ai agents?)\b/,
      /\b(ai|assistant|llm)s?\s+(reading|processing) this\b/,
      /<!--[^>]{0,200}\b(ai|assistant|llm|language model|chatbot|agent)\b[^>]{0,200}-->/,
      /\b(ai|assistant|llm|chatbot|agent|model)\s*:\s*(ignore|disregard|forget|do not|don't|instead|you must|always)\b/,
      /\b(attention|hey|dear|note to|to)( any| the)? (ai|llm|language model|ai model|ai assistant|chatbot|ai agent)s?\b[^.!?\n]{0,20}[:,]/,
    ],
  },
  {
    type: 'obfuscation',
    weight: 0.7,
    patterns: [
      /\b(decode|decipher|translate|convert|unscramble|reverse)\b[^.!?\n]{0,40}\b(base64|base-64|rot13|rot-13|hex|binary|morse|reversed|backwards|leetspeak|caesar)\b[^.!?\n]{0,80}\b(follow|execute|obey|do what|carry out|run|act on|then do|and do|comply)\b/,
    ],
  },
];

/** Talking about attacks (research, defences, classifiers, explanations) is not attacking. */
const DISCUSSION = /\b(prompt injections?|injection attacks?|jailbreak (attacks?|prompts?|attempts?|techniques?)|red[- ]?team(ing|ers)?|classifiers?|detect(ion|ors?|ing)?|defend|defen[cs]es?|mitigat\w*|security (research|team|training|awareness)|examples? of|what (is|are) (a |an )?(prompt injection|jailbreak))\b/;
/** Quoted text is being mentioned, not said. */
const QUOTED = /"[^"\n]{3,300}"|(?<![a-z])'[^'\n]{3,300}'(?![a-z])|“[^”\n]{3,300}”|`[^`\n]{3,300}`/g;
const MENTION_DAMPING = 0.35;
const DISCUSSION_DAMPING = 0.6;

const INVISIBLE = new RegExp(INVISIBLE_CLASS, 'gu');
const LEET: Record<string, string> = { '0': 'o', '3': 'e', '4': 'a', '5': 's', '7': 't', '@': 'a', $: 's' };
/** A 1 reads as l after a vowel or another 1 ("ru1es", "a11"), otherwise as i ("1gnore", "prev10us"). */
function oneAs(text: string, at: number): string {
  return at > 0 && 'aeiou1'.includes(text[at - 1]) ? 'l' : 'i';
}
const LEET_IN_WORD = /(?<=[a-z])[013457@$]|[013457@$](?=[a-z])/g;
/** "i g n o r e" → "ignore": four or more single letters separated by single spaces or dots. */
const SPACED = /\b[a-z](?:[ .][a-z]){3,}\b/g;
/**
 * At most 4,096 characters a match (a multiple of 4, so a longer run is read as consecutive payloads that each
 * decode): an unbounded run of 10 MB overflowed the regular expression engine's stack (RangeError) and failed the
 * request.
 */
const BASE64_RUN = /[A-Za-z0-9+/]{24,4096}={0,2}/g;
const HEX_RUN = /\b(?:[0-9a-f]{2}){12,}\b/gi;

const HYPHENATED = /(?<=[a-z])-(?=[a-z])/g;
/** A line break inside a sentence ("ignore all previous\ninstructions"); a blank line or a line that starts with markup is kept. */
const WRAPPED_LINE = /(?<=[a-z,])[ \t]*\r?\n[ \t]*(?=[a-z])/g;

/**
 * The texts the phrase families run on: look-alike letters folded to Latin, lower case without invisible characters,
 * spaced-out letters joined, words un-hyphenated ("dis-regard") and wrapped lines joined; and, when there is
 * leetspeak inside words, the same with it undone (kept apart because "rot13" must stay "rot13").
 */
export function normalizeForInjection(text: string): string[] {
  const plain = foldLookalikes(text)
    .toLowerCase()
    .replace(INVISIBLE, '')
    .replace(SPACED, (s) => s.replace(/[ .]/g, ''))
    .replace(HYPHENATED, '')
    .replace(WRAPPED_LINE, ' ')
    .replace(/\byou're\b/g, 'you are')
    .replace(/[ \t]+/g, ' ');
  const leet = plain.replace(LEET_IN_WORD, (c, at: number) => (c === '1' ? oneAs(plain, at) : LEET[c]));
  return leet === plain ? [plain] : [plain, leet];
}

export class InjectionDetector implements Detector {
  readonly #action: Action;
  readonly #threshold: number;

  constructor(action: Action, threshold: number) {
    this.#action = action;
    this.#threshold = threshold;
  }

  /** The noisy-OR of the strongest match of each family, in [0, 1). */
  score(text: string, depth = 0): { score: number; type: string } {
    const variants = normalizeForInjection(text).map((norm) => ({ norm, quoted: quotedSpans(norm) }));
    const damp = DISCUSSION.test(variants[0].norm) ? DISCUSSION_DAMPING : 1;
    let keep = 1;
    let top = { weight: 0, type: '' };
    for (const f of FAMILIES) {
      let best = 0;
      for (const re of f.patterns) {
        for (const { norm, quoted } of variants) {
          const m = re.exec(norm);
          if (!m) continue;
          const inQuotes = quoted.some(([s, e]) => m.index >= s && m.index + m[0].length <= e);
          best = Math.max(best, f.weight * damp * (inQuotes ? MENTION_DAMPING : 1));
        }
      }
      keep *= 1 - best;
      if (best > top.weight) top = { weight: best, type: f.type };
    }
    // An encoded payload that says the same things is the same attack, hidden.
    if (depth === 0) {
      const hidden = [
        ...taggedText(text),
        ...(text.match(BASE64_RUN) ?? []).filter(decodesToText).map((run) => Buffer.from(run, 'base64').toString('utf8')),
        ...(text.match(HEX_RUN) ?? []).map((run) => Buffer.from(run, 'hex').toString('utf8')).filter((s) => /^[\x20-\x7e\s]+$/.test(s)),
      ];
      for (const decoded of hidden) {
        const inner = this.score(decoded, 1).score;
        if (inner > 0) {
          const w = Math.max(inner, 0.6);
          keep *= 1 - w;
          if (w > top.weight) top = { weight: w, type: 'obfuscation' };
        }
      }
    }
    return { score: 1 - keep, type: top.type };
  }

  scan(text: string, out: Finding[]): void {
    const { score, type } = this.score(text);
    if (score >= this.#threshold) out.push({ category: 'injection', type, start: 0, end: text.length, action: this.#action });
  }
}

function quotedSpans(text: string): [number, number][] {
  const spans: [number, number][] = [];
  QUOTED.lastIndex = 0;
  for (let m = QUOTED.exec(text); m !== null; m = QUOTED.exec(text)) spans.push([m.index, m.index + m[0].length]);
  return spans;
}
