// A running gateway: configuration (loaded, watched, hot-reloaded), the data-plane and admin listeners,
// the endpoint picker, and an orderly shutdown.
import { MAX_TIMER_MS } from '../lib/duration.js';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { ConfigError, type Manifest } from '../config/manifest.js';
import { loadConfig } from '../config/load.js';
import { keepRestartRequired, restartRequiredChanges, type GatewaySettings } from '../config/settings.js';
import { ApiManagement, apimManifests } from '../apim/api-management.js';
import { registerApimAdminRoutes } from '../apim/admin-routes.js';
import { registerCacheRoutes } from '../apim/cache-routes.js';
import { upstreamEndpoints, type RuntimeConfig } from '../config/runtime-config.js';
import { configFingerprint, watchConfig } from '../config/watch.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { RequestMetrics } from '../telemetry/request-metrics.js';
import { ApimMetrics } from '../telemetry/apim-metrics.js';
import { AdminRouter, type AdminResponse } from './admin-router.js';
import { registerHealthRoutes, registerPoolRoutes } from './status-routes.js';
import { DataPlane } from './data-plane.js';
import { startExtprocServer, type ExtprocServer, type ExtprocServerOptions } from '../extproc/server.js';
import { extensionChain, type ExtensionChain } from '../extproc/extension-chain.js';
import { forgetExtensions } from '../extproc/client-metrics.js';
import { composeHooks } from '../extproc/compose-hooks.js';
import { prepareUsageEstimates } from './estimated-usage.js';
import { applyListenerTimeouts, checkPort, createListener, listen, openListener, type TlsFiles } from './listen.js';
import { UpstreamPools } from './upstream-pools.js';
import { EndpointAddresses, type LookupAll } from './endpoint-addresses.js';
import { AnalyticsPipeline, claimDirectory, registerAnalyticsRoutes, type DirectoryLock } from '../analytics/index.js';
import { backoffDelay } from '../analytics/backoff.js';
import { AuditRetention } from '../apim/audit-retention.js';
import type { StatsRunner } from '../analytics/stats-runner.js';
import { AnalyticsRecords, isMemoryDatabase } from '../store/index.js';
import { redactUrl } from '../store/errors.js';
import { createRequestTracer, type RequestTracer } from '../telemetry/tracing.js';
import { registerModelInfo } from '../telemetry/model-info.js';
import { ConfigReloads } from '../telemetry/config-reloads.js';
import { CoalescedRuns } from '../lib/coalesced-runs.js';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathNamed } from '../lib/path-named.js';

/**
 * How long the 503s of requests refused from the flow-control queue at the end of a shutdown get to go out before the
 * connections are closed: they are written within an event-loop turn or two (after the usage record's group commit).
 */
const REFUSALS_OUT_MS = 100;

/**
 * How long the requests whose connections the end of a shutdown cut get to end as their clients' hang-ups before the
 * model servers' connections are destroyed: they were recorded as the model server's failure (upstream_error).
 */
const CUTS_RECORDED_MS = 100;

export interface GatewayOptions {
  configPaths: string[];
  /** Manifests given in code (tests, the demo), merged with the files. */
  manifests?: Manifest[];
  port?: number;
  host?: string;
  adminPort?: number;
  /** Defaults to loopback unless an admin token is set. */
  adminHost?: string;
  adminToken?: string;
  /** Tokens still accepted beside `adminToken` (TOLLGATE_ADMIN_TOKEN_PREVIOUS). */
  adminPreviousTokens?: readonly string[];
  tls?: TlsFiles;
  logger?: Logger;
  /**
   * Set `logger`'s level from GatewaySettings.logging.level at start and on every reload. `serve` does unless
   * TOLLGATE_LOG_LEVEL is set (the environment wins); off by default, so an embedder's logger keeps its level.
   */
  logLevelFromSettings?: boolean;
  watch?: boolean;
  /** `sqlite:FILE`, `sqlite::memory:` (the default here; the CLI defaults to sqlite:./tollgate.db) or `postgres://...` */
  db?: string;
  /** PostgreSQL schema (tests use a fresh one per file). */
  dbSchema?: string;
  /** Share quota counters through Redis. */
  redis?: string;
  redisKeyPrefix?: string;
  /**
   * Where usage records wait for the database. Defaults to GatewaySettings.analytics.directory with a durable
   * database, and to a private temporary directory with an in-memory one (tests, embedded use).
   */
  analyticsDir?: string;
  /** Opens the ext_proc gRPC listener on this port (0: any free port); closed when absent. */
  extprocPort?: number;
  /** The ext_proc listener's roles, TLS and Envoy body mode (host defaults to `host`). */
  extproc?: Omit<ExtprocServerOptions, 'port'>;
  /** How endpoint host names are looked up (EndpointAddresses): dns.lookup by default; tests give their own. */
  lookup?: LookupAll;
}

export class Gateway {
  readonly registry: Registry;
  readonly logger: Logger;
  readonly admin: AdminRouter;
  readonly dataPlane: DataPlane;
  readonly picker: Scheduler;
  readonly apim: ApiManagement;
  readonly analytics: AnalyticsPipeline | null;
  #tracer: RequestTracer;
  /**
   * What a reload replaced (tracers, extension chains, the metric series of what it removed), each let go once the
   * requests begun before it are over, or at close(): calling one does so at once, and only once.
   */
  readonly #retired = new Set<() => unknown>();
  readonly #requestMetrics: RequestMetrics;
  readonly #apimMetrics: ApimMetrics;
  readonly #options: GatewayOptions;
  /** The --config files as they were when the running configuration was read from them (watch.ts). */
  readonly #filesLoaded: string | undefined;
  /** A reload that the store failed, tried again (backoff) until it applies or a newer change replaces it. */
  #reloadRetry: NodeJS.Timeout | undefined;
  #reloadFailures = 0;
  /**
   * One reload at a time, the newest asked for next: one that finished after a newer one (its lookup or store write
   * slower) installed its older API management policies over the newer ones.
   */
  readonly #reloads = new CoalescedRuns((overtaken) => this.#reloadOnce(overtaken));
  readonly #reloadOutcomes: ConfigReloads;
  /**
   * A reload handed API management the files' objects and did not apply (the store failed, a newer reload overtook it
   * after its write): the store or the policies may hold them, so the next one hands them over even when they look
   * unchanged.
   */
  #apimBehind = false;
  readonly #tempAnalyticsDir: string | null;
  /** The settings this process started with: the restart-required ones (RESTART_REQUIRED_SETTINGS) stay at these. */
  readonly #startSettings: GatewaySettings;
  /** External ext_proc extensions (ExtensionChain manifests): outermost, before the policy engine. */
  #chain: ExtensionChain;
  readonly #pools: UpstreamPools;
  /** The ip:port of endpoints named by host, which ext_proc gives Envoy: looked up at each apply and kept current. */
  readonly #addresses: EndpointAddresses;
  #server: Server | null = null;
  readonly #adminServer: Server;
  /** listen() has opened the data plane (and ext_proc) and run the first scrape round. */
  #listened = false;
  #extproc: ExtprocServer | null = null;
  #stopWatching: (() => void) | null = null;
  #closing: Promise<void> | null = null;
  /** Stats queries (a thread of their own on a SQLite file): closed with the gateway. */
  readonly #stats: StatsRunner;
  readonly #auditRetention: AuditRetention;
  port = 0;
  adminPort = 0;
  extprocPort = 0;

  /** `admin`: the admin port, open since the start began, with its health routes; the gateway adds the others. */
  constructor(
    options: GatewayOptions,
    config: RuntimeConfig,
    apim: ApiManagement,
    registry: Registry,
    logger: Logger,
    tracer: RequestTracer,
    filesLoaded: string | undefined,
    admin: { router: AdminRouter; server: Server },
    claimed?: DirectoryLock,
  ) {
    this.#options = options;
    this.#filesLoaded = filesLoaded;
    this.logger = logger;
    this.#startSettings = config.settings;
    this.#applyLogLevel(config.settings);
    this.registry = registry;
    this.#reloadOutcomes = new ConfigReloads(registry);
    this.apim = apim;
    this.#pools = new UpstreamPools(config.settings);
    this.#addresses = new EndpointAddresses(logger, options.lookup);
    const shared = sharedAnalyticsDirectory(options, config);
    this.#tempAnalyticsDir = shared === undefined ? mkdtempSync(join(tmpdir(), 'tollgate-analytics-')) : null;
    const directory = shared ?? this.#tempAnalyticsDir!;
    this.analytics = config.settings.analytics.enabled
      ? new AnalyticsPipeline({ db: apim.db, databaseUrl: options.db, databaseSchema: options.dbSchema, settings: { ...config.settings.analytics, directory }, registry, logger, claimed })
      : null;
    this.#tracer = tracer;
    this.#chain = extensionChain(config.manifests, { registry, maxBodyBytes: config.settings.server.maxBodyBytes });
    this.picker = new Scheduler({ settings: config.settings.scheduler, logger, registry, tls: this.#pools.tls });
    this.picker.update(config.pools);
    registerModelInfo(this.registry, () => this.config);
    // Stored responses other replicas (or this process before a restart) saw made are found in the usage records.
    const responseRecords = this.analytics ? new AnalyticsRecords(apim.db) : undefined;
    this.#requestMetrics = new RequestMetrics(this.registry);
    this.#apimMetrics = new ApimMetrics(this.registry);
    this.dataPlane = new DataPlane({
      config,
      picker: this.picker,
      pools: this.#pools,
      metrics: this.#requestMetrics,
      apimMetrics: this.#apimMetrics,
      logger: this.logger,
      hooks: composeHooks(this.#chain.hooks, apim.hooks),
      tracer,
      analytics: this.analytics ?? undefined,
      findResponse: responseRecords && ((id) => responseRecords.findResponse(id)),
    });
    apim.onHooks = (hooks) => (this.dataPlane.hooks = composeHooks(this.#chain.hooks, hooks));
    this.admin = admin.router;
    this.#adminServer = admin.server;
    this.adminPort = (admin.server.address() as AddressInfo).port;
    registerApimAdminRoutes(this.admin, {
      db: apim.db,
      fileOwned: (kind, name) => this.config.manifests.some((m) => m.kind === kind && m.metadata.name === name),
      fileManifests: () => this.config.manifests,
      compileProblems: (store, before) => apim.compileProblems(store, before),
      policyManifests: (store) => apim.policyManifests(store),
      settled: () => apim.settled(),
    });
    registerCacheRoutes(this.admin, { db: apim.db, caches: apim.caches });
    this.#stats = registerAnalyticsRoutes(this.admin, { db: apim.db });
    this.#auditRetention = new AuditRetention(apim.db.audit, config.settings.audit.retention, logger);
    registerPoolRoutes(this.admin, { picker: this.picker });
    this.admin.starting = false;
  }

  get config(): RuntimeConfig {
    return this.dataPlane.config;
  }

  get url(): string {
    return `${this.#options.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  get adminUrl(): string {
    return `http://127.0.0.1:${this.adminPort}`;
  }

  async listen(): Promise<void> {
    const o = this.#options;
    const settings = this.config.settings;
    // Before listening: records left by an earlier process are replayed first. A directory that cannot be used (not a
    // directory, not writable, held by another live process) is a configuration problem: `serve` exits 2 with it. A
    // full disk is an incident, not configuration: the pipeline starts without its spool and claims it once there is
    // room (AnalyticsPipeline.start).
    try {
      this.analytics?.start();
    } catch (err) {
      throw new ConfigError([`analytics.directory ${pathNamed(this.analytics!.directory)}: ${(err as Error).message}`]);
    }
    prepareUsageEstimates(settings);
    this.#auditRetention.start();
    // Before any request: ext_proc gives Envoy ip:port, never a host name Envoy cannot route to.
    await this.#addresses.resolve(this.config);
    this.#addresses.start(() => this.config);
    const faultFormat = () => this.dataPlane.hooks.faultFormat?.();
    const server = (this.#server = createListener(this.dataPlane.handle, settings.server, {
      tls: o.tls,
      faultFormat,
      maxBodyBytes: () => this.config.settings.server.maxBodyBytes,
      onRefused: this.dataPlane.refused,
    }));
    const [host, port] = [o.host ?? '0.0.0.0', o.port ?? 8080];
    this.port = await openListener('data plane', host, port, () => listen(server, port, host));
    if (o.extprocPort !== undefined) {
      const extproc = { host, ...o.extproc, port: o.extprocPort };
      this.extprocPort = await openListener('ext_proc', extproc.host, extproc.port, async () => {
        this.#extproc = await startExtprocServer({ dataPlane: this.dataPlane, logger: this.logger }, extproc);
        return this.#extproc.port;
      });
    }
    // One scrape round before the first request: endpoints are only picked once their metrics are known.
    this.picker.start();
    await this.picker.refresh();
    // From the files as they were read, not as they are now: a change written during the start is a change.
    if (o.watch !== false && o.configPaths.length > 0) this.#stopWatching = watchConfig(o.configPaths, () => void this.reload(), { since: this.#filesLoaded ?? UNKNOWN_FILES, logger: this.logger });
    this.#listened = true;
  }

  /**
   * Re-reads the configuration; a bad one is logged and the last good one stays. One the store cannot take (the
   * database down) is tried again, with backoff, until it applies. Reloads run one at a time: one asked for while
   * another runs comes next (once, however often it was asked for), and the one running stops before its next step
   * that would commit anything (store write, policies, apply), as the files it read are older. Resolves with whether
   * the change this call asked for applied: false when it was rejected, overtaken by a newer one, or the gateway closed.
   */
  reload(): Promise<boolean> {
    if (this.#closing) return Promise.resolve(false);
    // The run this call gets reads the files as they are then: what a pending retry would have read, or newer.
    clearTimeout(this.#reloadRetry);
    return this.#reloads.run();
  }

  async #reloadOnce(overtaken: AbortSignal): Promise<boolean> {
    // Queued behind a reload that ran into the shutdown.
    if (this.#closing) return false;
    let next: RuntimeConfig;
    try {
      next = loadConfig(this.#options.configPaths, this.#options.manifests);
      refuseEmptiedFiles(this.config.manifests, next.manifests);
      // Host names it brings are looked up before it applies (the others' addresses are known): never rejects. A
      // newer reload does not wait for it (a name may take LOOKUP_TIMEOUT_MS).
      await Promise.race([this.#addresses.resolve(next), untilAborted(overtaken)]);
      if (overtaken.aborted) return false;
      // Only API management's objects go to the store: a change without any (pools, models, routes, settings)
      // applies while the database cannot be reached.
      if (this.#apimBehind || !sameManifests(apimManifests(this.config.manifests), apimManifests(next.manifests))) {
        // From here the store may hold this change's objects: until a reload applies, each hands the files' objects
        // over again, even ones that look unchanged.
        this.#apimBehind = true;
        if (!(await this.apim.useFileManifests(next.manifests, overtaken))) return false;
      }
    } catch (err) {
      if (err instanceof ConfigError) {
        this.logger.error({ problems: err.problems }, 'configuration change rejected; the last good configuration stays');
        this.#reloadOutcomes.rejected(err.problems);
        return false;
      }
      // The newer reload under way hands the store the files' objects itself.
      if (overtaken.aborted || this.#closing) return false;
      // A valid change the store could not take: nothing would tell the watcher again once it is back.
      const retryInMs = Math.round(backoffDelay(++this.#reloadFailures));
      const problems = [(err as Error).message];
      this.logger.error(
        { problems, retryInMs },
        'configuration change not applied yet: its API management objects could not be stored; the last good configuration stays until a retry succeeds',
      );
      this.#reloadOutcomes.rejected([`not applied yet, retried in ${retryInMs} ms: its API management objects could not be stored: ${problems[0]}`]);
      this.#reloadRetry = setTimeout(() => void this.reload(), retryInMs).unref();
      return false;
    }
    // Its policies may be in force already: past that point a reload applies, unless the gateway is closing.
    if (this.#closing) return false;
    try {
      this.apply(next);
    } catch (err) {
      // What can fail is checked as the files load, and apply() builds what could still fail before it changes
      // anything: a throw here is a bug, which must not end the process from a file watcher's callback.
      const problems = [`applying it failed: ${(err as Error).message}`];
      this.logger.error({ err, problems }, 'configuration change failed to apply');
      this.#reloadOutcomes.rejected(problems);
      return false;
    }
    this.#apimBehind = false;
    this.#reloadFailures = 0;
    this.#reloadOutcomes.applied();
    this.logger.info({ pools: next.pools.size, models: next.models.size }, 'configuration reloaded');
    return true;
  }

  /**
   * Switches to `next` without dropping a request: requests in flight finish with what they started with (their
   * upstream connections close after them), new ones see all of `next`. Every GatewaySettings field applies here
   * except RESTART_REQUIRED_SETTINGS, which are logged as waiting for a restart.
   */
  apply(next: RuntimeConfig): void {
    const pending = restartRequiredChanges(this.#startSettings, next.settings);
    const config = { ...next, settings: keepRestartRequired(this.#startSettings, next.settings) };
    const settings = config.settings;
    // A new chain's clients know none of the streams in flight: only a change of its own makes one. Made before
    // anything changes, as the step that can throw (grpc-js building its channel): a throw leaves the running
    // configuration whole.
    const chain =
      !sameManifests(chainManifests(this.config.manifests), chainManifests(next.manifests)) || settings.server.maxBodyBytes !== this.config.settings.server.maxBodyBytes
        ? extensionChain(next.manifests, { registry: this.registry, maxBodyBytes: settings.server.maxBodyBytes })
        : null;
    // The addresses of names known already are set at once; names new to it (an apply not through reload) follow.
    void this.#addresses.resolve(next);
    const origins = new Set<string>();
    for (const e of upstreamEndpoints(next)) origins.add(e.url);
    this.#pools.retain(origins, settings);
    for (const server of [this.#server, this.#adminServer]) if (server) applyListenerTimeouts(server, settings.server);
    this.analytics?.reconfigure(settings.analytics);
    this.#auditRetention.reconfigure(settings.audit.retention);
    prepareUsageEstimates(settings);
    this.#applyLogLevel(settings);
    if (!sameTracing(this.config.settings.tracing, settings.tracing)) this.#replaceTracer(settings);
    // The ext_proc listener's gRPC message limit is set when it opens: a body larger than it allows fails there.
    if (this.#extproc && settings.server.maxBodyBytes > this.#extproc.maxBodyBytes) pending.push('server.maxBodyBytes (over ext_proc)');
    if (pending.length > 0) this.logger.warn({ fields: pending }, 'these settings change only at a restart; the running values stay until then');
    if (chain) {
      const old = this.#chain;
      this.#chain = chain;
      this.dataPlane.hooks = composeHooks(this.#chain.hooks, this.apim.hooks);
      this.#retire(() => {
        old.close();
        // Unless the chain in force by then has them again.
        forgetExtensions(this.registry, old.names.filter((name) => !this.#chain.names.includes(name)));
      });
    }
    // The series of pools, models and target models no longer configured, once the requests that record them are over.
    this.#retire(() => {
      this.#requestMetrics.retain(this.config);
      this.#apimMetrics.retain(this.config);
    });
    this.dataPlane.config = config;
    // After the data plane's: a queued request the new pools let go (at once, or at their first scrape) resolves its
    // model again in the configuration in force, not in the one it was queued under (ClientPickRequest.reconfigured).
    this.picker.update(next.pools);
    this.picker.configure(settings.scheduler, { tls: this.#pools.tls });
  }

  /** The tracer new requests start with. */
  get tracer(): RequestTracer {
    return this.#tracer;
  }

  /**
   * New requests (and the policy engine's spans) take a tracer for the new settings; the old one keeps the spans of
   * the requests that started with it and is shut down once they are over. The policy engine compiled with it makes
   * spans with it until the engine is compiled again, for requests begun until then too.
   */
  #replaceTracer(settings: GatewaySettings): void {
    const old = this.#tracer;
    this.#tracer = createRequestTracer(settings.tracing, this.logger);
    this.dataPlane.tracer = this.#tracer;
    this.#retire(() => old.shutdown(), this.apim.useTracer(this.#tracer));
    // A hosted collector's URL may carry its credential.
    this.logger.info({ endpoint: settings.tracing.endpoint === undefined ? null : redactUrl(settings.tracing.endpoint) }, settings.tracing.endpoint ? 'tracing with the new settings' : 'tracing is off');
  }

  /**
   * Closes what the requests begun so far may still use (data-plane requests and ext_proc streams alike) once they are
   * over: at once when none is in flight. Held instead for the longest a request could last, every reload that changed
   * a tracing setting kept a span-export thread (~15 MB) for 10 minutes. That longest time, under the settings they
   * started with (so called before a reload installs its own), stays the bound: a request stuck past its own timeouts
   * does not hold it for ever. New requests stop taking it once `installed` resolves (at once without it).
   */
  #retire(close: () => unknown, installed?: Promise<void>): void {
    const { server, upstream, scheduler } = this.config.settings;
    // Each at most 24d, their sum is not: past Node's longest timer it was closed at once.
    const lastRequestMs = Math.min(MAX_TIMER_MS, Math.max(server.shutdownGracePeriod, upstream.responseTimeout + scheduler.flowControl.maxWait));
    const retire = (): unknown => {
      clearTimeout(timer);
      return this.#retired.delete(retire) ? close() : undefined;
    };
    const timer = setTimeout(retire, lastRequestMs).unref();
    this.#retired.add(retire);
    void (installed ? installed.then(() => this.dataPlane.begunOver()) : this.dataPlane.begunOver()).then(retire);
  }

  #applyLogLevel(settings: GatewaySettings): void {
    // Never the shared silent logger: it is every library's default.
    if (this.#options.logLevelFromSettings && this.logger !== silentLogger) this.logger.level = settings.logging.level;
  }

  /** /readyz's answer once the store has loaded (storeLoading's before). */
  readiness(): AdminResponse {
    const pools = this.picker.ready();
    const notReady = pools.filter((p) => !p.reachable).map((p) => p.pool);
    const listening = this.#server?.listening === true;
    // False while API management refuses every request because its stored policies cannot be built.
    const policiesBuilt = this.apim.engine !== undefined;
    const ready = listening && notReady.length === 0 && policiesBuilt;
    // A rejected reload does not make it unready: the last good configuration serves. It is reported, for whoever
    // changed the files.
    const lastReload = this.#reloadOutcomes.last;
    const loading = this.#listened ? [] : ['listeners'];
    return { status: ready ? 200 : 503, body: { ready, listening, configLoaded: true, policiesBuilt, poolsNotReady: notReady, lastReload, loading } };
  }

  /** Stops accepting, lets in-flight requests finish within the grace period, then closes everything. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Resolves once the data plane's requests and the ext_proc streams are over, or after `ms`, whichever comes first. */
  async #drainWithin(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const drained = Promise.all([this.dataPlane.drain(), this.#extproc?.drain(ms)]);
    await Promise.race([drained, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  async #close(): Promise<void> {
    this.#stopWatching?.();
    // A reload under way stops before its next step (one queued behind it does nothing); what it is doing (a store
    // write) is waited for below, before the store closes.
    this.#reloads.abort();
    this.#addresses.stop();
    clearTimeout(this.#reloadRetry);
    const server = this.#server;
    if (server) {
      server.close();
      server.closeIdleConnections();
    }
    // ext_proc streams pick too: the picker (its queue, its scrapes) runs until they are over as well.
    await this.#drainWithin(this.config.settings.server.shutdownGracePeriod);
    // Requests still queued were never sent to a model server: stopping the picker answers them 503 shutting_down
    // (safe to retry elsewhere), and those answers go out before the connections are cut (they were a TCP reset).
    await this.picker.stop();
    await this.#drainWithin(REFUSALS_OUT_MS);
    this.dataPlane.cut();
    server?.closeAllConnections();
    await this.#extproc?.close(0);
    await this.#drainWithin(CUTS_RECORDED_MS);
    closeNow(this.#adminServer);
    await this.#pools.close();
    this.#chain.close();
    await this.analytics?.close();
    await this.#stats.close();
    await this.#auditRetention.close();
    await this.#reloads.settled();
    // API management started with the tracer, so it closes before it.
    await this.apim.close();
    await Promise.all([this.#tracer.shutdown(), ...[...this.#retired].map((retire) => retire())]);
    if (this.#tempAnalyticsDir) rmSync(this.#tempAnalyticsDir, { recursive: true, force: true });
  }
}

/**
 * A file that held manifests and now, still there, holds none is taken for a file being written (truncated, then
 * written again): applied, it dropped every model until the write ended. Deleting a file removes its objects.
 */
function refuseEmptiedFiles(running: readonly Manifest[], next: readonly Manifest[]): void {
  const now = new Set(next.map((m) => m.source));
  const emptied = [...new Set(running.map((m) => m.source))].filter((file) => !now.has(file) && isFile(file));
  if (emptied.length > 0) {
    throw new ConfigError(emptied.map((file) => `${file}: held manifests and now holds none; taken for a file being written (delete the file to remove its objects)`));
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Whether two lists declare the same objects in the same order, wherever in the files they are. */
function sameManifests(a: readonly Manifest[], b: readonly Manifest[]): boolean {
  const content = (ms: readonly Manifest[]) => JSON.stringify(ms.map(({ apiVersion, kind, metadata, spec }) => [apiVersion, kind, metadata, spec]));
  return content(a) === content(b);
}

/** Resolves once `signal` is aborted (at once if it is already). */
function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
}

const chainManifests = (manifests: readonly Manifest[]) => manifests.filter((m) => m.kind === 'ExtensionChain');

/** Whether two tracing sections configure the same tracer (headers compared by value). */
function sameTracing(a: GatewaySettings['tracing'], b: GatewaySettings['tracing']): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * /readyz while API management opens (the database and its migrations, the first snapshot of the store, the policies
 * built from it): on a big store that takes tens of seconds, which the admin port no longer spends closed.
 */
function storeLoading(config: RuntimeConfig): AdminResponse {
  return {
    status: 503,
    body: { ready: false, listening: false, configLoaded: true, policiesBuilt: false, poolsNotReady: [...config.pools.keys()], lastReload: null, loading: ['store'] },
  };
}

/** Stops accepting and drops every connection, idle or not. */
function closeNow(server: Server): void {
  server.close();
  server.closeAllConnections();
}

/**
 * The files read at start could not be fingerprinted (the process out of descriptors): any fingerprint differs, so
 * the watch reloads once it can take one rather than miss a change made during the start.
 */
const UNKNOWN_FILES = '';

/**
 * The analytics directory a gateway uses that other processes may also name: --analytics-dir or the configured one;
 * undefined for a gateway on an in-memory database without one given, which gets a temporary directory of its own.
 */
function sharedAnalyticsDirectory(options: GatewayOptions, config: RuntimeConfig): string | undefined {
  const memoryDb = options.db === undefined || isMemoryDatabase(options.db);
  if (options.analyticsDir === undefined && memoryDb) return undefined;
  return options.analyticsDir ?? config.settings.analytics.directory;
}

/**
 * Loads the configuration (ConfigError on a bad one), checks the ports, opens the admin port (health, readiness and
 * metrics at once; the other admin routes answer 503 `starting` until the store has loaded), claims the analytics
 * directory (before the store, which the start writes the files' products to), opens API management,
 * then the data-plane and ext_proc listeners (ListenError when one cannot open), and starts watching. A start that
 * fails closes what it had opened, in reverse order, so it leaves nothing behind.
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  // Taken first: a change written while the files are read, or later in the start, is then one the watch sees.
  const filesLoaded = configFingerprint(options.configPaths);
  const config = loadConfig(options.configPaths, options.manifests);
  const logger = options.logger ?? silentLogger;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const opened: (() => Promise<void>)[] = [];
  try {
    // Made first: the policy engine gives each request policy a span of its own with it.
    const tracer = createRequestTracer(config.settings.tracing, logger);
    opened.push(() => tracer.shutdown());
    // A port that is taken fails the start now, not once the store has loaded.
    const host = options.host ?? '0.0.0.0';
    await checkPort('data plane', host, options.port ?? 8080);
    if (options.extprocPort !== undefined) await checkPort('ext_proc', options.extproc?.host ?? host, options.extprocPort);
    let readiness = () => storeLoading(config);
    const router = new AdminRouter(options.adminToken, logger, options.adminPreviousTokens);
    registerHealthRoutes(router, { readiness: () => readiness(), registry });
    router.starting = true;
    const adminServer = createListener(router.handle, config.settings.server, { methods: 'GET, POST, PUT, DELETE' });
    const [adminHost, adminPort] = [options.adminHost ?? (options.adminToken ? '0.0.0.0' : '127.0.0.1'), options.adminPort ?? 8081];
    const adminListening = await openListener('admin', adminHost, adminPort, () => listen(adminServer, adminPort, adminHost));
    opened.push(async () => closeNow(adminServer));
    // A start refused because another live process holds the analytics directory must be refused before the store is
    // opened: opening it writes the files' products and operation sets there, which a shared store's other gateways use.
    const spool = sharedAnalyticsDirectory(options, config);
    let claimed: DirectoryLock | undefined;
    if (spool !== undefined && config.settings.analytics.enabled) {
      try {
        claimed = claimDirectory(spool);
      } catch (err) {
        throw new ConfigError([`analytics.directory ${pathNamed(spool)}: ${(err as Error).message}`]);
      }
      opened.push(async () => claimed?.release());
    }
    logger.info({ admin: `${adminHost}:${adminListening}` }, 'the admin port is open; loading the store');
    const apim = await ApiManagement.open(
      { db: options.db ?? 'sqlite::memory:', dbSchema: options.dbSchema, redis: options.redis, redisKeyPrefix: options.redisKeyPrefix, logger, registry, tracer },
      config.manifests,
    );
    opened.push(() => apim.close());
    const gateway = new Gateway(options, config, apim, registry, logger, tracer, filesLoaded, { router, server: adminServer }, claimed);
    readiness = () => gateway.readiness();
    // From here the gateway owns the tracer, the admin port and API management, and closes them with the rest.
    opened.splice(0, opened.length, () => gateway.close());
    if (!config.manifests.some((m) => m.kind === 'APIMExtensionPolicy')) {
      gateway.logger.warn('no APIMExtensionPolicy is configured: this is a plain inference gateway and no credentials are asked for');
    }
    await gateway.listen();
    return gateway;
  } catch (err) {
    for (const close of opened.reverse()) {
      // The start's own failure is the one to report; one of closing is only logged.
      await close().catch((closeErr: unknown) => logger.warn({ err: closeErr }, 'closing after a failed start failed'));
    }
    throw err;
  }
}
