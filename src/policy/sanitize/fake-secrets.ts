// Credentials for the sanitizer's tests and its labelled prompts, generated on demand: the data file and the tests hold
// `{{kind}}` markers or calls instead of key-shaped strings, so no secret scanner ever trips over the repository.
// Seeded, so every run sees the same text.
import { seededRandom } from '../../sim/hash.js';

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPER_DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const URL_SAFE = `${BASE62}_-`;
const BASE64 = `${BASE62}+/`;

export class FakeSecrets {
  readonly #next: () => number;

  constructor(seed = 42) {
    this.#next = seededRandom(seed);
  }

  /** Replaces every `{{kind}}` marker in `text`. @throws on an unknown kind. */
  expand(text: string): string {
    return text.replace(/\{\{(\w+)\}\}/g, (_m, kind: string) => this.make(kind));
  }

  make(kind: string): string {
    const r = (alphabet: string, n: number) => this.#random(alphabet, n);
    switch (kind) {
      case 'aws':
        return `AKIA${r('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)}`;
      case 'ghp':
        return `ghp_${r(BASE62, 36)}`;
      case 'github_pat':
        return `github_pat_${r(BASE62, 22)}_${r(BASE62, 59)}`;
      case 'openai':
        return `sk-${r(BASE62, 48)}`;
      case 'openai_proj':
        return `sk-proj-${r(URL_SAFE, 156)}`;
      case 'slack_bot':
        return `xoxb-${r('0123456789', 12)}-${r('0123456789', 13)}-${r(BASE62, 24)}`;
      case 'slack_webhook':
        return `https://hooks.slack.com/services/T${r(UPPER_DIGITS, 8)}/B${r(UPPER_DIGITS, 10)}/${r(BASE62, 24)}`;
      case 'google':
        return `AIza${r(URL_SAFE, 35)}`;
      case 'stripe_live':
        return `sk_live_${r(BASE62, 24)}`;
      case 'stripe_test':
        return `sk_test_${r(BASE62, 24)}`;
      case 'tg':
        return `tg_${r(BASE62, 40)}`;
      case 'tgat':
        return `tgat_${r(BASE62, 32)}`;
      case 'jwt':
        return `eyJ${r(URL_SAFE, 33)}.eyJ${r(URL_SAFE, 60)}.${r(URL_SAFE, 43)}`;
      case 'pem':
        return `-----BEGIN RSA PRIVATE KEY-----\n${[1, 2, 3].map(() => r(BASE64, 64)).join('\n')}\n-----END RSA PRIVATE KEY-----`;
      case 'random32':
        return r(BASE62, 32);
      case 'random40':
        return r(BASE64, 40);
      case 'random48':
        return r(BASE62, 48);
      default:
        throw new Error(`unknown secret kind "${kind}"`);
    }
  }

  /** Random over `alphabet`, redrawn until lower case, upper case and digits all appear (as real keys do). */
  #random(alphabet: string, n: number): string {
    for (;;) {
      let s = '';
      for (let i = 0; i < n; i++) s += alphabet[Math.floor(this.#next() * alphabet.length)];
      if (n < 12 || !/[a-z]/.test(alphabet) || (/[a-z]/.test(s) && /[A-Z]/.test(s) && /\d/.test(s))) return s;
    }
  }
}
