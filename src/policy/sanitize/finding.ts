// What the sanitizer's detectors report: a category (the filter that owns it), a type, and where in the text.

export type Category = 'injection' | 'pii' | 'secret' | 'url' | 'denylist' | 'classifier';
export type Action = 'block' | 'redact';

export interface Finding {
  category: Category;
  /** e.g. `email`, `creditCard`, `awsAccessKey`, `ipLiteral`; the redaction reads `[REDACTED:<type>]`. */
  type: string;
  /** UTF-16 offsets into the scanned text, end exclusive. */
  start: number;
  end: number;
  action: Action;
}

/** Appends what it finds in `text` to `out`; detectors are built once per policy, regexes precompiled. */
export interface Detector {
  scan(text: string, out: Finding[]): void;
}
