// Malicious and deceptive URLs: deny-listed domains, public IP-literal hosts, punycode and non-ASCII (homoglyph)
// hosts, credentials in the authority (`https://bank.com@evil.example`), brand look-alikes, and phishing words on
// abused top-level domains. Private and loopback addresses are not flagged: they are someone's own network.
import type { Action, Detector, Finding } from './finding.js';
import { hasNonAscii } from './lookalikes.js';

/**
 * A sentence's full stop (or comma, ...) after a URL is not part of it. Trimmed from the end by hand: the regex
 * `[.,;:!?]+$` restarts at every character of a long run of them, quadratic in the run (2 s on a 64 KiB prompt).
 */
function withoutTrailingPunctuation(url: string): string {
  let end = url.length;
  while (end > 0 && '.,;:!?'.includes(url[end - 1])) end--;
  return url.slice(0, end);
}

const URL_PATTERN = /\b(?:https?|ftp):\/\/(?:[^\s<>"'`/?#@[\]]*@)?(?:\[[0-9a-f:.]+\])?[^\s<>"'`)\]}]*|\bwww\.[^\s<>"'`)\]}]+/gi;
/** The raw authority as written, before WHATWG parsing turns Unicode into punycode. */
const AUTHORITY = /^(?:[a-z]+:\/\/)?([^/?#]*)/i;

/** Safe Browsing's own test pages: deny-listed out of the box so the filter can be tried. */
const BUILT_IN_DENY = ['testsafebrowsing.appspot.com', 'malware.testing.google.test'];

/** Brands phishing pages imitate; a host naming one must be that brand's own domain. */
const BRANDS = ['paypal', 'apple', 'icloud', 'microsoft', 'office365', 'outlook', 'google', 'amazon', 'netflix', 'facebook', 'instagram', 'whatsapp', 'chase', 'wellsfargo', 'bankofamerica', 'coinbase', 'binance', 'metamask', 'dropbox', 'docusign', 'linkedin', 'steam', 'adobe', 'dhl', 'fedex', 'usps'];
/** Brands' own domain names, which look-alikes borrow whole (steamcommunity-gift.ru). */
const BRAND_SET = new Set([...BRANDS, 'steamcommunity', 'steampowered', 'microsoftonline', 'appleid', 'paypalobjects', 'googleapis']);
/** Top-level domains abused far beyond their share, where login words are a strong phishing sign. */
const ABUSED_TLDS = new Set(['zip', 'mov', 'xyz', 'top', 'tk', 'ml', 'ga', 'cf', 'gq', 'icu', 'cyou', 'rest', 'click', 'country', 'work', 'support', 'live']);
const PHISHING_WORDS = /(login|log-in|signin|sign-in|verify|verification|account|secure|update|wallet|password|banking|unlock|suspend|confirm)/i;
/** Digit and letter swaps look-alike hosts use: paypa1, g00gle, rnicrosoft. */
const LOOKALIKE_SWAPS: [RegExp, string][] = [[/0/g, 'o'], [/1/g, 'l'], [/3/g, 'e'], [/5/g, 's'], [/rn/g, 'm'], [/vv/g, 'w']];
/** Second-level suffixes under which the registrable name is the third label from the right. */
const TWO_LEVEL = /\.(co|com|org|net|gov|ac|edu)\.[a-z]{2}$/;

export interface UrlDetectorOptions {
  blockedDomains: readonly string[];
  allowedDomains: readonly string[];
  blockIpLiterals: boolean;
}

function registrable(host: string): string {
  const labels = host.split('.');
  return labels.slice(TWO_LEVEL.test(host) ? -3 : -2).join('.');
}

function isPublicIp(host: string): boolean {
  if (host.startsWith('[')) {
    const h = host.slice(1, -1).toLowerCase();
    return !(h === '::1' || h === '::' || /^f[cd]/.test(h) || h.startsWith('fe80'));
  }
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(host);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return !(a === 10 || a === 127 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127));
}

const underDomain = (host: string, domains: readonly string[]) => domains.some((d) => host === d || host.endsWith(`.${d}`));

export class UrlDetector implements Detector {
  readonly #action: Action;
  readonly #blocked: readonly string[];
  readonly #allowed: readonly string[];
  readonly #ipLiterals: boolean;

  constructor(action: Action, opts: UrlDetectorOptions) {
    this.#action = action;
    this.#blocked = [...BUILT_IN_DENY, ...opts.blockedDomains.map((d) => d.toLowerCase().replace(/^\*?\./, ''))];
    this.#allowed = opts.allowedDomains.map((d) => d.toLowerCase().replace(/^\*?\./, ''));
    this.#ipLiterals = opts.blockIpLiterals;
  }

  scan(text: string, out: Finding[]): void {
    URL_PATTERN.lastIndex = 0;
    for (let m = URL_PATTERN.exec(text); m !== null; m = URL_PATTERN.exec(text)) {
      const raw = withoutTrailingPunctuation(m[0]);
      const type = this.#verdict(raw);
      if (type) out.push({ category: 'url', type, start: m.index, end: m.index + raw.length, action: this.#action });
    }
  }

  /** Why the URL is bad, or undefined when it is not. */
  #verdict(raw: string): string | undefined {
    let url: URL;
    try {
      url = new URL(/^www\./i.test(raw) ? `http://${raw}` : raw);
    } catch {
      return undefined;
    }
    const host = url.hostname.toLowerCase();
    if (underDomain(host, this.#allowed)) return undefined;
    if (underDomain(host, this.#blocked)) return 'denylisted';
    // Credentials in a URL leak a secret (the secrets filter's business); a host-like user name deceives.
    if (url.username.includes('.')) return 'userinfo';
    if (this.#ipLiterals && isPublicIp(host)) return 'ipLiteral';
    const authority = AUTHORITY.exec(raw)?.[1] ?? '';
    if (hasNonAscii(authority)) return 'homoglyph';
    if (host.split('.').some((l) => l.startsWith('xn--'))) return 'punycode';
    if (this.#lookalike(host)) return 'lookalike';
    const tld = host.slice(host.lastIndexOf('.') + 1);
    if (ABUSED_TLDS.has(tld) && PHISHING_WORDS.test(host + url.pathname)) return 'phishing';
    return undefined;
  }

  /** A host label naming a brand (whole, with digit swaps, or glued to a phishing word) on another brand's domain. */
  #lookalike(host: string): boolean {
    const own = registrable(host).split('.')[0];
    if (BRAND_SET.has(own)) return false;
    for (const token of host.split(/[.-]/)) {
      let swapped = token;
      for (const [from, to] of LOOKALIKE_SWAPS) swapped = swapped.replace(from, to);
      if (BRAND_SET.has(token) || BRAND_SET.has(swapped)) return true;
      for (const brand of BRANDS) {
        if (token.length > brand.length && (token.startsWith(brand) || token.endsWith(brand)) && PHISHING_WORDS.test(token.replace(brand, ''))) return true;
      }
    }
    return false;
  }
}
