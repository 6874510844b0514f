// Reads node:test's TAP report line by line and keeps what each failed test printed, so the runner can name every
// failure again right above the summary: CI logs are often kept only from their end.

/** Lines of one failure's details kept (its error, expected/actual and the top of its stack). */
const DETAIL_LINES = 40;

export class FailureLog {
  /** Names of the subtests open at each depth of the report (4 spaces of indentation a level). */
  #open = [];
  /** The failure whose YAML details are being read, and the indentation of its block. */
  #reading;
  #failures = [];
  /** The summary (from "# tests" on), held back until the failures are listed. */
  #summary;

  /** Takes one line of the report; returns what to print now. */
  line(line) {
    if (this.#summary) {
      this.#summary.push(line);
      return [];
    }
    if (/^# tests \d+/.test(line)) {
      this.#summary = [line];
      return [];
    }
    this.#read(line);
    return [line];
  }

  /** What to print once the report has ended: the failures, then the summary held back. */
  end() {
    const out = [];
    const failures = this.#failures.filter((f) => !f.details.some((d) => /failureType: 'subtestsFailed'/.test(d)));
    if (failures.length > 0) {
      out.push(`# ${failures.length} failed:`);
      for (const f of failures) {
        out.push(`# ✖ ${f.path.join(' › ')}`);
        for (const d of f.details) out.push(`#     ${d}`);
      }
    }
    return [...out, ...(this.#summary ?? [])];
  }

  #read(line) {
    const indent = line.length - line.trimStart().length;
    const text = line.trimStart();
    if (this.#reading) {
      if (text === '...' && indent === this.#reading.indent) {
        this.#reading = undefined;
      } else if (text !== '---' && this.#reading.failure.details.length < DETAIL_LINES) {
        this.#reading.failure.details.push(line.slice(this.#reading.indent));
      }
      return;
    }
    const depth = Math.floor(indent / 4);
    const subtest = /^# Subtest: (.*)$/.exec(text);
    if (subtest) {
      this.#open.length = depth;
      this.#open[depth] = subtest[1];
      return;
    }
    const result = /^(not )?ok \d+ - (.*?)(?: # (?:SKIP|TODO)\b.*)?$/.exec(text);
    if (!result) return;
    this.#open.length = depth;
    if (!result[1]) return;
    const failure = { path: [...this.#open, result[2]], details: [] };
    this.#failures.push(failure);
    this.#reading = { failure, indent: indent + 2 };
  }
}
