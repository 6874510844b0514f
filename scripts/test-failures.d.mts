/** See test-failures.mjs. */
export class FailureLog {
  line(line: string): string[];
  end(): string[];
}
