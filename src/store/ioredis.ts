// ioredis, loaded by the first Redis connection (counters, caches, vectors) rather than by every gateway.
import type * as IoRedis from 'ioredis';
import { lazyRequire } from '../lib/lazy-require.js';

export const loadIoredis = lazyRequire<typeof IoRedis>('ioredis');
