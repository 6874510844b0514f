// Messages between SanitizeUserPrompt and the thread that scans long prompts (WorkerCalls numbers the scans).
import type { FailedCall } from '../../lib/answer-calls.js';
import type { ScanText, TextVerdict } from './scanner.js';

/** `spec` is the policy's spec as configured (plain data: the thread compiles its own scanner from it). */
export type ScanRequest = { type: 'scan'; spec: unknown; texts: ScanText[] };

export type Found = { type: 'found'; seq: number; verdicts: TextVerdict[] };

export type ScanAnswer = Found | FailedCall;
