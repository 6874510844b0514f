// Messages between the gateway and the thread that counts long texts' tokens (WorkerCalls numbers the counts).
import type { FailedCall } from './answer-calls.js';

/** countTextTokens(text, budget); an Infinity budget crosses as one (structured clone). */
export type CountRequest = { type: 'count'; text: string; budget: number };

export type Counted = { type: 'counted'; seq: number; tokens: number };

export type CountAnswer = Counted | FailedCall;
