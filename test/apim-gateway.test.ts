// API management end to end on SQLite (in memory) with memory counters: the suite is test/helpers/apim-gateway-suite.ts.
import { apimGatewaySuite } from './helpers/apim-gateway-suite.js';

apimGatewaySuite('sqlite+memory');
