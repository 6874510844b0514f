// API management end to end on PostgreSQL with Redis counters (DATABASE_URL and REDIS_URL; skipped, visibly, without
// them): the same suite as test/apim-gateway.test.ts, test/helpers/apim-gateway-suite.ts.
import { apimGatewaySuite } from './helpers/apim-gateway-suite.js';

apimGatewaySuite('postgres+redis');
