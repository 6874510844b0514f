// Credentials: cloud and SaaS keys by their documented prefixes, private key blocks, JWTs, tollgate's own keys, and
// generic secrets (a value assigned to a secret-sounding name, or a long random-looking token).
import type { SecretType } from '../../config/apim-kinds.js';
import { entropy } from './checksums.js';
import type { Action } from './finding.js';
import { RegexDetector, type RegexRule } from './regex-detector.js';

/** Values people write instead of a secret: `YOUR_API_KEY`, `<token>`, `${SECRET}`, `xxxxxxxx`, `process.env.X`. */
const PLACEHOLDER = /^(?:<[^>]*>?|\$\{?[\w.]*\}?|\{\{?[^}]*\}?\}?|(.)\1{5,}|.*(?:your|example|placeholder|changeme|redacted|dummy|sample|xxxx|\*\*\*\*|\.\.\.).*|process\.env.*|os\.environ.*|env\[.*)$/i;

/** SCREAMING_SNAKE names stand for a value elsewhere (`api_key=OPENAI_API_KEY`). */
const CONSTANT_NAME = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$|^[A-Z]+$/;

/** A random-looking token: long, mixed character classes, high entropy, and not base64 of readable text. */
function randomToken(m: string, text: string, start: number): boolean {
  if (/base64,\s*$/.test(text.slice(Math.max(0, start - 8), start))) return false;
  let classes = 0;
  if (/[a-z]/.test(m)) classes++;
  if (/[A-Z]/.test(m)) classes++;
  if (/\d/.test(m)) classes++;
  if (classes < 3 || entropy(m) < 4.3) return false;
  return !decodesToText(m);
}

/** Base64 of prose (an obfuscated prompt) is not a secret; the injection filter looks at those. */
export function decodesToText(token: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(token) || token.length % 4 === 1) return false;
  const bytes = Buffer.from(token, 'base64');
  if (bytes.length < 12) return false;
  let printable = 0;
  for (const b of bytes) if ((b >= 32 && b < 127) || b === 10 || b === 13 || b === 9) printable++;
  return printable / bytes.length > 0.95;
}

export const RULES: Record<SecretType, RegexRule[]> = {
  awsAccessKey: [{ type: 'awsAccessKey', pattern: /\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b/g }],
  githubToken: [{ type: 'githubToken', pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,251})\b/g }],
  openaiKey: [
    {
      type: 'openaiKey',
      pattern: /\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,200}(?![\w-])/g,
      valid: (m) => /\d/.test(m) && /[A-Za-z]{2}/.test(m) && (m.match(/-/g)?.length ?? 0) < m.length / 8,
    },
  ],
  slackToken: [
    { type: 'slackToken', pattern: /\bxox[abposr]-[A-Za-z0-9-]{10,250}\b/g },
    { type: 'slackToken', pattern: /\bhttps:\/\/hooks\.slack\.com\/services\/T[A-Z0-9]+\/B[A-Z0-9]+\/[A-Za-z0-9]{16,}/g },
  ],
  googleApiKey: [{ type: 'googleApiKey', pattern: /\bAIza[0-9A-Za-z_-]{35}(?![\w-])/g }],
  stripeKey: [{ type: 'stripeKey', pattern: /\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,247}\b/g }],
  // Without its END line (a stream still arriving, a truncated paste) the block runs to the end of the text.
  privateKey: [{ type: 'privateKey', pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|$)/g }],
  tollgateKey: [{ type: 'tollgateKey', pattern: /\b(?:tg_[0-9A-Za-z]{40}|tgat_[0-9A-Za-z]{20,})\b/g }],
  // Starts only where a run of token characters starts: with \b, every `eyJ` after a `-` in one long run was a new
  // start that scanned the rest of the run (quadratic: 6 minutes for a 1 MiB run of `eyJ-`).
  jwt: [{ type: 'jwt', pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g }],
  genericSecret: [
    {
      type: 'genericSecret',
      pattern: /(?<![A-Za-z0-9])(?:api[_-]?key|apikey|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|bearer[_-]?token|client[_-]?secret|passwd|password|pwd|private[_-]?key|aws_secret_access_key)["']?(?:\s+(?:for|of|to|on)\s+(?:the\s+|my\s+|our\s+)?[\w-]+)?\s*(?:[:=]|=>|\bis\b)\s*(?:bearer\s+)?["'`]?([^\s"'`,;]{8,200})/dgi,
      group: 1,
      valid: (v) => !PLACEHOLDER.test(v) && !CONSTANT_NAME.test(v) && !/^[a-z][a-z0-9+.-]*:\/\//i.test(v) && (/[\d\W_]/.test(v) || v.length >= 16),
    },
    { type: 'genericSecret', pattern: /(?<![\w+/=-])[A-Za-z0-9+/_=-]{32,200}(?![\w+/=-])/g, valid: randomToken },
    // The password of a connection string or URL (postgres://app:s3cret@db), and of mysql's -p flag. The match starts
    // at `://` and looks back for the scheme (at most 32 characters): started at the scheme, each word of a long run
    // such as `a.a.a…` began a scan of up to 32 characters (4 MB: 1 s; unbounded, quadratic). The search for -p stops
    // at the next mysql: each `mysql` of a long line searched to its end (40,000 characters of `mysql `: 41 ms, x16 for
    // x4); the match then starts at that later mysql, and the finding (the -p value) is the same.
    { type: 'genericSecret', pattern: /:\/\/(?<=\b[a-z][a-z0-9+.-]{0,31}:\/\/)[^\s:/@]+:([^\s@/]{6,})@/dgi, group: 1, valid: (v) => !PLACEHOLDER.test(v) && !/^(pass|password|secret|changeme)$/i.test(v) },
    { type: 'genericSecret', pattern: /\b(?:mysql|mysqldump|mysqladmin|mariadb)\b(?:(?!\b(?:mysql|mysqldump|mysqladmin|mariadb)\b)[^\n])*?\s-p(\S{4,})/dg, group: 1 },
    { type: 'genericSecret', pattern: /--password[= ](\S{4,})/dg, group: 1, valid: (v) => !PLACEHOLDER.test(v) },
  ],
};

export const SECRET_DETECTOR_TYPES = Object.keys(RULES) as SecretType[];

export function secretDetector(action: Action, types: readonly SecretType[] = SECRET_DETECTOR_TYPES): RegexDetector {
  return new RegexDetector('secret', action, types.flatMap((t) => RULES[t]));
}
