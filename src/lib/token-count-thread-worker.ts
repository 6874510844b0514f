// The thread that counts long texts' tokens, one at a time, as countTextTokens on the event loop would.
import { answerCalls } from './answer-calls.js';
import { countTextTokensUncached, loadTokenizer } from './tokenizer.js';
import type { CountRequest, Counted } from './token-count-thread-protocol.js';

// The tables load with the thread, not in the first count's time.
loadTokenizer();

// Uncached: the gateway keeps the exact counts it is given, and texts sent here are long ones.
answerCalls<CountRequest, Counted>((request) => ({ type: 'counted', tokens: countTextTokensUncached(request.text, request.budget) }));
