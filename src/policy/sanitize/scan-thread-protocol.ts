// Messages between SanitizeUserPrompt and the thread that scans long prompts (WorkerCalls numbers the scans).
import type { TextVerdict } from './scanner.js';

/** `spec` is the policy's spec as configured (plain data: the thread compiles its own scanner from it). */
export type ScanRequest = { type: 'scan'; spec: unknown; texts: string[] } | { type: 'close' };

export type ScanAnswer = { type: 'found'; seq: number; verdicts: TextVerdict[] } | { type: 'failed'; seq: number; message: string };
