// The thread that scans long prompts: one scanner per policy spec, compiled on first use, one scan at a time.
import { sanitizeUserPromptSpec } from '../../config/apim-kinds.js';
import { answerCalls } from '../../lib/answer-calls.js';
import { Scanner } from './scanner.js';
import type { Found, ScanRequest } from './scan-thread-protocol.js';

/** Specs seen; a reload brings new ones, so the oldest go beyond this many. */
const MAX_SCANNERS = 64;
const scanners = new Map<string, Scanner>();

function scannerFor(spec: unknown): Scanner {
  const key = JSON.stringify(spec);
  let scanner = scanners.get(key);
  if (!scanner) {
    if (scanners.size >= MAX_SCANNERS) scanners.delete(scanners.keys().next().value!);
    scanner = new Scanner(sanitizeUserPromptSpec.parse(spec).filters);
    scanners.set(key, scanner);
  }
  return scanner;
}

answerCalls<ScanRequest, Found>((request) => {
  const scanner = scannerFor(request.spec);
  return { type: 'found', verdicts: request.texts.map((t) => scanner.judge(t)) };
});
