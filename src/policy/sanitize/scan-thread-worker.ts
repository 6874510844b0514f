// The thread that scans long prompts: one scanner per policy spec, compiled on first use, one scan at a time.
import { parentPort } from 'node:worker_threads';
import { sanitizeUserPromptSpec } from '../../config/apim-kinds.js';
import type { Numbered } from '../../lib/worker-calls.js';
import { Scanner } from './scanner.js';
import type { ScanAnswer, ScanRequest } from './scan-thread-protocol.js';

const port = parentPort!;
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

// Scans come numbered by WorkerCalls; close does not (nothing answers it: the thread exits).
port.on('message', (request: Numbered<Extract<ScanRequest, { type: 'scan' }>> | Extract<ScanRequest, { type: 'close' }>) => {
  if (request.type === 'close') return port.close();
  let answer: ScanAnswer;
  try {
    const scanner = scannerFor(request.spec);
    answer = { type: 'found', seq: request.seq, verdicts: request.texts.map((t) => scanner.judge(t)) };
  } catch (err) {
    answer = { type: 'failed', seq: request.seq, message: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(answer);
});
