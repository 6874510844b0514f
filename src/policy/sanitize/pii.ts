// Personal data: email addresses, phone numbers (E.164 and common national formats), payment cards (Luhn and issuer
// prefix), US SSNs (area/group/serial rules), UK National Insurance numbers, IBANs (mod 97).
import type { PiiType } from '../../config/apim-kinds.js';
import { ibanValid, luhnValid } from './checksums.js';
import type { Action } from './finding.js';
import { RegexDetector, type RegexRule } from './regex-detector.js';
import { SpelledOutEmail } from './spelled-email.js';

/** RFC 2606/6761 names for documentation and tests: `someone@example.com` is nobody's address. */
const RESERVED_DOMAIN = /(^|\.)(example\.(com|org|net)|example|test|invalid|localhost)$/i;

/** Words that make a bare run of digits a phone number or an SSN. */
const PHONE_CONTEXT = /\b(phone|call|cell|mobile|tel|telephone|text me|whatsapp|sms|fax|reach me)\b[^\n]{0,24}$/i;
const SSN_CONTEXT = /\b(ssn|social security( number| no\.?)?|social insurance)\b[^\n]{0,20}$/i;

const digitCount = (s: string) => s.replace(/\D/g, '').length;
const before = (text: string, start: number, n: number) => text.slice(Math.max(0, start - n), start);

/** Issuer prefixes of the card networks: Visa, Mastercard, Amex, Diners, Discover, JCB, UnionPay, Maestro. */
const CARD_PREFIX = /^(4|5[1-5]|2[2-7]|3[47]|3[0689]|6011|64[4-9]|65|62|35|5[06-9]|6[37])/;

export const RULES: Record<PiiType, RegexRule[]> = {
  email: [
    {
      type: 'email',
      // Starts after a space, bracket, quote or punctuation: `user:pass@host` and `x!y@host` are not addresses.
      pattern: /(?<=^|[\s<([{"',;=])[A-Za-z0-9._%+-]+@((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24})\b/g,
      valid: (m) => !RESERVED_DOMAIN.test(m.slice(m.indexOf('@') + 1)),
    },
    // Spelled out to dodge scrapers: "sam dot wilson at gmail dot com" (not a regex: see spelled-email.ts).
    { type: 'email', pattern: new SpelledOutEmail() },
  ],
  phone: [
    // International: +CC then groups, 8–15 digits in all (E.164).
    { type: 'phone', pattern: /(?<![\w+])\+[1-9]\d{0,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,5}(?![\w-])/g, valid: (m) => digitCount(m) >= 8 && digitCount(m) <= 15 },
    // North American: (212) 555-0147, 212-555-0147, 212.555.0147, 1-800-555-0199.
    { type: 'phone', pattern: /(?<![\w.+-])(?:1[-.\s])?(?:\([2-9]\d{2}\)\s?|[2-9]\d{2}[-.\s])[2-9]\d{2}[-.\s]\d{4}(?![\w-])/g },
    // UK and other trunk-prefix formats: 07700 900123, 020 7946 0958; French 06 12 34 56 78.
    { type: 'phone', pattern: /(?<![\w.+-])0[1-9]\d{1,3}[\s-]\d{3,4}[\s-]?\d{3,4}(?![\w-])/g, valid: (m) => digitCount(m) >= 10 && digitCount(m) <= 11 },
    { type: 'phone', pattern: /(?<![\w.+-])0[1-9](?:[\s.]\d{2}){4}(?![\w-])/g },
    // Ten or eleven bare digits only when the text says it is a phone number.
    { type: 'phone', pattern: /(?<![\w.+-])(?:1?[2-9]\d{9}|07\d{9})(?![\w-])/g, valid: (_m, text, start) => PHONE_CONTEXT.test(before(text, start, 40)) },
  ],
  creditCard: [
    {
      type: 'creditCard',
      // Separators include the no-break, narrow and thin spaces and the zero-width characters: a number split by
      // invisible ones reads the same to a model.
      pattern: /(?<![\w-])\d(?:[ \-\u00a0\u2009\u200b-\u200d\u202f\u2060\ufeff]?\d){12,18}(?![\w-])/g,
      valid: (m) => {
        const digits = m.replace(/\D/g, '');
        return CARD_PREFIX.test(digits) && luhnValid(digits) && !/^(\d)\1+$/.test(digits);
      },
    },
  ],
  usSsn: [
    { type: 'usSsn', pattern: /(?<![\w-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w-])/g },
    { type: 'usSsn', pattern: /(?<![\w-])(?!000|666|9\d\d)\d{3}(?!00)\d{2}(?!0000)\d{4}(?![\w-])/g, valid: (_m, text, start) => SSN_CONTEXT.test(before(text, start, 40)) },
  ],
  ukNino: [
    { type: 'ukNino', pattern: /\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b/g },
  ],
  iban: [
    {
      type: 'iban',
      pattern: /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b/g,
      valid: (m) => {
        const s = m.replace(/ /g, '');
        return s.length >= 15 && s.length <= 34 && ibanValid(s);
      },
    },
  ],
};

export const PII_DETECTOR_TYPES = Object.keys(RULES) as PiiType[];

export function piiDetector(action: Action, types: readonly PiiType[] = PII_DETECTOR_TYPES): RegexDetector {
  return new RegexDetector('pii', action, types.flatMap((t) => RULES[t]));
}
