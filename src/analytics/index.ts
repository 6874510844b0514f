// Public API of analytics: per-request records, the durable pipeline that stores them, and the stats admin route.
export { AnalyticsPipeline, claimDirectory, type AnalyticsPipelineOptions } from './pipeline.js';
export type { DirectoryLock } from './spool-lock.js';
export { recordFromContext, type AnalyticsRecord, type RequestIdentity } from './record.js';
export { analyticsSettingsSpec, type AnalyticsSettings } from './settings.js';
export { registerAnalyticsRoutes, type AnalyticsRouteDeps } from './stats-routes.js';
