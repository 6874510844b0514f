// For tests of code that must read its input once: how many characters `fn` read (String#charCodeAt) and how many
// regular expressions it ran (RegExp#exec, which test/match/replace go through), counted rather than timed.

export function countReads<T>(fn: () => T): { result: T; reads: number; regexRuns: number } {
  const charCodeAt = String.prototype.charCodeAt;
  const exec = RegExp.prototype.exec;
  let reads = 0;
  let regexRuns = 0;
  String.prototype.charCodeAt = function (this: string, i: number) {
    reads++;
    return charCodeAt.call(this, i);
  };
  RegExp.prototype.exec = function (this: RegExp, s: string) {
    regexRuns++;
    return exec.call(this, s);
  };
  try {
    return { result: fn(), reads, regexRuns };
  } finally {
    String.prototype.charCodeAt = charCodeAt;
    RegExp.prototype.exec = exec;
  }
}
