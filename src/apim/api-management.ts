// API management at run time: the store, the counters, the in-memory identity snapshot and the compiled policy
// engine, kept current. Store changes (this replica's or, through PostgreSQL NOTIFY, another's) are read again by
// what they touched: products, operation sets and manifests (the policies) recompile the engine and re-resolve the
// keys' grants; key-value map entries update the entries in memory; a key is read again alone, apps and developers
// their apps' keys, at once, whatever else is under way. A change that cannot say which keys it touched reloads
// everything. Configuration reloads recompile the engine. The hot path only ever reads memory.
import { CacheResources } from '../policy/caching/cache-resources.js';
import { registerCacheEvents } from '../policy/caching/cache-events.js';
import { Counter, Gauge, type Registry } from 'prom-client';
import { ConfigError, validateDocument, type Manifest } from '../config/manifest.js';
import type { GatewayHooks } from '../gateway/hooks.js';
import type { RequestContext } from '../gateway/context.js';
import { gatewayError } from '../gateway/errors.js';
import { silentLogger, type Logger } from '../lib/logger.js';
import { withStallTimeout, withTimeout } from '../lib/with-timeout.js';
import type { RequestTracer } from '../telemetry/tracing.js';
import { CachedAccessTokens, COUNTER_ERROR_OUTCOMES, createPolicyEngine, registerBuiltins, type CounterErrorOutcome, type IdentitySource, type KeyRecord, type PolicyEngine } from '../policy/index.js';
import { checkTemplates, type FlowDeps } from '../policy/flow.js';
import { AccessTokens, IDENTITY_TYPES, openCounterStore, openDatabase, RESOURCE_TYPES, type ChangeEvent, type IdentityRefs, type IdentityRows, type CounterStore, type Database, type KvmEntryRef, type KvmScope, type PolicyRows, type Snapshot, type StoreView } from '../store/index.js';
import { syncFileManifests } from './file-manifests.js';
import { KvmCipher } from './kvm-cipher.js';
import { keyOf, KvmView } from './kvm-view.js';
import { SnapshotIdentity } from './snapshot-identity.js';
import { widenedTemplates } from '../policy/template-scope.js';
import { PromptCalibration } from '../policy/prompt-calibration.js';
import { TokensInFlight } from '../policy/tokens-in-flight.js';
import { DEFAULT_KEY_PREFIX, parseRedisTarget } from '../store/redis-target.js';

/**
 * A read of the store that goes this long without an answer is given up (a connection gone silent would otherwise hold
 * refreshes forever). A whole snapshot, or every entry, is read in pages and given up once no page came for this long:
 * a big store's takes longer in all (1.5 million key-value entries, 10 s), and a bound on the whole failed it for good.
 */
const SNAPSHOT_TIMEOUT_MS = 10_000;
/** Owners of changed keys awaiting a read past which a whole reload is done instead (a read names each one). */
const MAX_IDENTITY_DUE = 1000;
/** After a failed reload, the next try comes after this, doubling up to the maximum, until one succeeds. */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

export interface ApiManagementOptions {
  /** `sqlite:FILE`, `sqlite::memory:` or `postgres://...` */
  db: string;
  /** PostgreSQL schema (tests use a fresh one per file). */
  dbSchema?: string;
  /** Share counters through Redis; in memory when absent. */
  redis?: string;
  /** What begins every Redis key (default: the URL's `?keyPrefix=`, else `tollgate:`); counters add `counters:`. */
  redisKeyPrefix?: string;
  logger: Logger;
  registry: Registry;
  /** The gateway's tracer: each request policy gets a span of its own when its policySpans is on. */
  tracer?: RequestTracer;
}

interface IdentityDue {
  appIds: Set<string>;
  developerIds: Set<string>;
  keyIds: Set<string>;
}

/** Manifests of the API-management kinds (apim.googleapis.com). */
export function apimManifests(manifests: readonly Manifest[]): Manifest[] {
  return manifests.filter((m) => m.apiVersion.startsWith('apim.googleapis.com/'));
}

/** The snapshot's policies alone: kept, the rest of a snapshot (every key's row) would stay in memory with them. */
function policiesOf({ products, operationSets, manifests }: Snapshot): PolicyRows {
  return { products, operationSets, manifests };
}

/** The policies without what the admin API stored: the --config files' objects alone. */
function filesOnly(snapshot: PolicyRows): PolicyRows {
  return { ...snapshot, manifests: snapshot.manifests.filter((m) => m.owner === 'file'), products: snapshot.products.filter((p) => p.owner === 'file') };
}

export class ApiManagement {
  readonly db: Database;
  readonly counters: CounterStore;
  /** Whether the warning that another process shares the store while counters stay in memory was logged (once). */
  #toldOfSharedStore = false;
  /** Cache stores of the cache policies: shared by every engine this gateway compiles, closed with it. */
  readonly caches: CacheResources;
  /** Learned from every answer, so it outlives the engine a store change rebuilds. */
  readonly #promptCalibration = new PromptCalibration(Date.now);
  readonly #tokensInFlight = new TokensInFlight();
  readonly #logger: Logger;
  /** What the engine was last built from. */
  #policies!: PolicyRows;
  #identity!: SnapshotIdentity;
  #engine: PolicyEngine | undefined;
  readonly #onCounterError: (outcome: CounterErrorOutcome) => void;
  #tracer: RequestTracer | undefined;
  #fileManifests: Manifest[] = [];
  /** Reloads of the policies, entries or everything: one at a time. */
  #refreshing: Promise<void> | null = null;
  /** Reads of changed keys: one at a time, but never waiting for a reload (a revoke must take effect within 1 s). */
  #identityReads: Promise<void> | null = null;
  /** A whole reload is due. */
  #reloadDue = false;
  /** The products, operation sets and manifests are to be read again (a whole reload reads them too). */
  #policiesDue = false;
  /** Key-value map entries to read again (by id), or every entry; a whole reload reads them too. */
  #kvmDue: Map<string, KvmEntryRef> | 'all' | undefined;
  /** Keys, and apps (and developers, with all their apps) whose keys, to read again. */
  #identityDue: IdentityDue | undefined;
  /**
   * Key changes served while a whole reload is under way: its read may have begun before their COMMIT, so they are
   * served again over what it read, not replaced by what they changed. Undefined when no whole reload is.
   */
  #servedDuringReload: { refs: IdentityRefs; rows: IdentityRows }[] | undefined;
  /** performance.now() when keys were last put in force (a change's rows served, a whole reload installed). */
  #identityServedAt = -Infinity;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelayMs = RETRY_MIN_MS;
  #closed = false;
  #unsubscribe: () => void;
  #hooks: GatewayHooks = {};
  /** Every engine's key-value maps, in memory (decrypted with TOLLGATE_KVM_KEY, read once). */
  readonly #kvm: KvmView;
  /** Called with the hooks of each newly compiled engine. */
  onHooks: (hooks: GatewayHooks) => void = () => {};

  /** Delegates to the current snapshot, so a revoked key stops working without recompiling the engine. */
  readonly #identitySource: IdentitySource;

  private constructor(db: Database, counters: CounterStore, caches: CacheResources, logger: Logger, registry: Registry, tracer: RequestTracer | undefined) {
    this.db = db;
    this.#tracer = tracer;
    this.counters = counters;
    this.caches = caches;
    this.#logger = logger;
    this.#identitySource = {
      findKeyByHash: (hash: string): KeyRecord | undefined => this.#identity.findKeyByHash(hash),
      accessTokens: new CachedAccessTokens(new AccessTokens(db)),
    };
    this.#kvm = new KvmView(KvmCipher.fromEnv(), db, logger);
    this.#unsubscribe = db.onChange((event) => this.#changed(event));
    const credentials: Gauge = new Gauge({
      name: 'tollgate_apim_credentials',
      help: 'API keys in the in-memory snapshot',
      registers: [registry],
      collect: () => credentials.set(this.#identity?.size ?? 0),
    });
    // A restart with a wrong or missing TOLLGATE_KVM_KEY: policies reading these entries fail, so it can be alerted on.
    const unreadable: Gauge = new Gauge({
      name: 'tollgate_kvm_unreadable_entries',
      help: 'Encrypted key-value map entries this process cannot read (TOLLGATE_KVM_KEY unset or not the key they were written with)',
      registers: [registry],
      collect: () => unreadable.set(this.#kvm.unreadableEntries),
    });
    // One counter for the process: engines are rebuilt on every store or config change, and the figure must not reset.
    const counterErrors = new Counter<'outcome'>({
      name: 'tollgate_counter_store_errors_total',
      help: 'Counter-store calls the store could not answer (outage or timeout), by what became of the request: failed_open (let through uncounted), refused (500), deferred (a token reconciliation or refund kept to be tried again), settled_late (one of those taken later), unsettled (one dropped)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    for (const outcome of COUNTER_ERROR_OUTCOMES) counterErrors.inc({ outcome }, 0);
    this.#onCounterError = (outcome) => counterErrors.labels(outcome).inc();
    registerCacheEvents(registry, caches);
  }

  static async open(opts: ApiManagementOptions, fileManifests: readonly Manifest[]): Promise<ApiManagement> {
    const db = await openDatabase(opts.db, { schema: opts.dbSchema, logger: opts.logger });
    const keyPrefix = opts.redisKeyPrefix ?? (opts.redis === undefined ? undefined : parseRedisTarget(opts.redis).keyPrefix) ?? DEFAULT_KEY_PREFIX;
    const { store: counters, unreachable } = await openCounterStore(opts.redis, { keyPrefix: `${keyPrefix}counters:`, logger: opts.logger });
    const caches = new CacheResources({ redisUrl: opts.redis, redisKeyPrefix: keyPrefix, postgres: db.dialect === 'postgres' ? db.boundedKysely : undefined, logger: opts.logger });
    await caches.ready();
    const apim = new ApiManagement(db, counters, caches, opts.logger, opts.registry, opts.tracer);
    try {
      await apim.useFileManifests(fileManifests);
      // Policies that fail open chose availability over exact counts, during an outage and so also at a start in one
      // (a restarted replica would otherwise stay down until Redis is back). Otherwise the flag is refused.
      if (unreachable) {
        if (!apim.engine?.failsOpen) throw unreachable;
        opts.logger.warn({ err: unreachable.message }, 'Redis cannot be reached; the APIMExtensionPolicy fails open, so requests go on uncounted until it can');
      }
    } catch (err) {
      await apim.close();
      throw err;
    }
    return apim;
  }

  /** The current engine's hooks, for the data plane. */
  get hooks(): GatewayHooks {
    return this.#hooks;
  }

  /** The policy engine; undefined while the policies cannot be built from the store (every request is refused then). */
  get engine(): PolicyEngine | undefined {
    return this.#engine;
  }

  /**
   * A configuration (re)load: the file's products and operation sets into the store, then a new engine. Resolves
   * false, the policies left as they were, when `overtaken` is aborted by the time the store holds the objects (a newer
   * reload will hand over its own); true once they are installed.
   */
  async useFileManifests(manifests: readonly Manifest[], overtaken?: AbortSignal): Promise<boolean> {
    const apim = apimManifests(manifests);
    this.#refuseSecurityOff(apim);
    // Compile first: a bad policy configuration is refused before anything is written.
    if (!this.#policies) {
      const snapshot = await this.db.loadSnapshot();
      this.#identity = await SnapshotIdentity.load(snapshot);
      this.#policies = policiesOf(snapshot);
      this.#kvm.load(snapshot.kvmEntries);
    }
    // Files that let go of a product's template would make that template run for every request: refused at a reload
    // (the last good configuration stays) and at a start (which exits 2) alike.
    const widened =
      this.#engine !== undefined
        ? widenedTemplates(this.#manifestsOf(this.#fileManifests, this.#policies, silentLogger), this.#manifestsOf(apim, this.#policies, silentLogger))
        : this.#widenedSinceLastRun(apim, this.#policies);
    if (widened.length > 0) throw new ConfigError(widened);
    const snapshot = this.#policies;
    let engine: PolicyEngine | undefined;
    let unbuildable: readonly string[] = [];
    try {
      engine = this.#build(apim, snapshot, this.#logger);
    } catch (err) {
      // At start, policies the files allow but what the admin API stored breaks (a manifest a newer version validates
      // more strictly, say) must not keep the gateway down: its admin API is how that manifest gets fixed.
      if (!(err instanceof ConfigError) || this.#engine !== undefined || this.#problemsOf(apim, filesOnly(snapshot)).length > 0) throw err;
      unbuildable = err.problems;
    }
    // Off (no APIMExtensionPolicy) nothing was built, but the templates and rules are checked all the same: the files
    // breaking them are refused, as when it is on; what the store kept from before apply checked them waits for it.
    if (engine?.enabled === false) {
      const problems = this.#problemsOf(apim, snapshot);
      if (problems.length > 0 && this.#problemsOf(apim, filesOnly(snapshot)).length > 0) throw new ConfigError(problems);
    }
    // Installed only once the store holds the files' objects: a write that fails (the database down) leaves the
    // policies, the files they follow and the store as they were, for the reload to be tried again.
    for (const object of await syncFileManifests(this.db, apim)) {
      this.#logger.warn({ object }, 'an object created through the admin API is now declared in --config files: the file replaces it (and the admin API can no longer change it)');
    }
    if (overtaken?.aborted) return false;
    if (engine) this.#install(engine, apim);
    else this.#refuseEverything(unbuildable);
    this.#fileManifests = apim;
    await this.#refreshPolicies();
    return true;
  }

  /**
   * A reload whose files drop the APIMExtensionPolicy (and the store holds none) would turn every key, quota and policy
   * off at once: a file being rewritten (deleted, then written again) did that for a moment, letting requests in
   * without a key. As the admin API asks for force, a reload is refused; a restart without it turns API management off.
   */
  #refuseSecurityOff(apim: readonly Manifest[]): void {
    const isExtension = (m: { kind: string }) => m.kind === 'APIMExtensionPolicy';
    const dropped = this.#fileManifests.find(isExtension);
    if (!dropped || apim.some(isExtension) || this.#policies?.manifests.some(isExtension)) return;
    throw new ConfigError([
      `APIMExtensionPolicy/${dropped.metadata.name}: no longer in the configuration files; removing it turns API management off (keys, quotas, policies), which a reload does not do: restart the gateway to turn it off`,
    ]);
  }

  /** Recompiles the engine with a new tracer (a reload changed the tracing settings). */
  useTracer(tracer: RequestTracer): Promise<void> {
    this.#tracer = tracer;
    return this.#refreshPolicies();
  }

  /**
   * Resolves once the refresh and the read of keys under way (if any) are over: a change committed by this process has
   * started them before its transaction returns, so an admin answer that waits for this is served by the new state on
   * this replica.
   */
  async settled(): Promise<void> {
    await Promise.all([this.#refreshing, this.#identityReads]);
  }

  /** Reloads the whole snapshot (coalescing bursts of changes) and recompiles the engine. */
  refresh(): Promise<void> {
    this.#reloadDue = true;
    return this.#catchUp();
  }

  /** Reads the policies again and recompiles the engine: the keys, apps, developers and entries are left as they are. */
  #refreshPolicies(): Promise<void> {
    this.#policiesDue = true;
    return this.#catchUp();
  }

  /**
   * A change is read again by what it touched: reloading the whole store for a product's change, or for a data-plane
   * `put` of one entry, cost each replica seconds (200,000 keys) and held the data plane meanwhile.
   */
  #changed(event: ChangeEvent): void {
    // A reload of everything is not told by another process (a PostgreSQL listener that reconnected, a SQLite reader that fell behind).
    if (event.origin === 'remote' && this.counters.inProcess && !this.#toldOfSharedStore && event.resourceTypes.length < RESOURCE_TYPES.length) {
      this.#toldOfSharedStore = true;
      this.#logger.warn(
        'another tollgate process changes this store, and counters are kept in memory: each process counts quotas, spike arrests and token quotas on its own, so N processes admit up to N times a limit; share them with --redis',
      );
    }
    const types = event.resourceTypes;
    if (event.identity && this.#identity && types.every((t) => IDENTITY_TYPES.has(t))) {
      if (!event.identityRows) return this.#identityChanged(event.identity);
      // Rows served after this transaction's read began may be newer than its own (a key revoked meanwhile by another
      // transaction, here or on another replica, that does not lock this one's app).
      const overtaken = this.#identityServedAt >= event.identityRows.readStartedAt;
      this.#serve(event.identity, event.identityRows);
      // This replica's change, served as its transaction left it: read again only when it may have put back older
      // rows, or a read under way began before its COMMIT and would put back what it replaced. Read again always, it
      // cost every key change a second read.
      if (overtaken || this.#servedDuringReload || this.#identityReads) this.#identityChanged(event.identity);
      return;
    }
    // Keys changed without naming whose (a product's delete takes its grants from every key), or before any were read.
    if (!this.#identity || types.some((t) => IDENTITY_TYPES.has(t))) return void this.refresh();
    if (types.some((t) => t !== 'kvm')) this.#policiesDue = true;
    if (types.includes('kvm')) this.#kvmChanged(event);
    void this.#catchUp();
  }

  /**
   * Entries do not change the policies: named ones are read again one by one; unnamed (an admin change), every entry.
   */
  #kvmChanged(event: ChangeEvent): void {
    if (!event.kvmEntries) {
      this.#kvmDue = 'all';
      return;
    }
    // This replica's put holds its value in memory already (or once its COMMIT is answered, though the request gave up
    // waiting), unless a read under way replaces the values with what it read before the put committed: then the
    // entry is read again after it.
    if (event.origin === 'local' && !this.#refreshing) return;
    if (this.#kvmDue !== 'all') {
      this.#kvmDue ??= new Map();
      for (const e of event.kvmEntries) this.#kvmDue.set(keyOf(e.scope, e.mapName, e.key), e);
    }
  }

  /**
   * Serves the keys of a committed change from rows read after it. This process's own come with the rows its
   * transaction read before COMMIT, served at once: the admin answer says it is in force here, whether or not the
   * database can be read afterwards. Before, a key revoked just before the database became unreachable went on working
   * here until it came back.
   */
  #serve(refs: IdentityRefs, rows: IdentityRows): void {
    this.#identity.replace(refs, rows);
    this.#identityServedAt = performance.now();
    this.#servedDuringReload?.push({ refs, rows });
  }

  /**
   * A key, app or developer change touches only those apps' keys: reloading the whole store and rebuilding every
   * policy for it cost each replica time in the number of keys (0.4 s a change at 50,000). Their keys are read again.
   */
  #identityChanged(refs: IdentityRefs): void {
    const due = (this.#identityDue ??= { appIds: new Set(), developerIds: new Set(), keyIds: new Set() });
    for (const id of refs.appIds) due.appIds.add(id);
    for (const id of refs.developerIds) due.developerIds.add(id);
    for (const id of refs.keyIds ?? []) due.keyIds.add(id);
    // A burst of changes while a read is under way: past this many owners, one whole reload does better.
    if (due.appIds.size + due.developerIds.size + due.keyIds.size > MAX_IDENTITY_DUE) {
      this.#identityDue = undefined;
      return void this.refresh();
    }
    void this.#readIdentities();
  }

  /**
   * Reads changed keys until none are due, beside any reload under way: behind one (seconds, with a big store) a key
   * revoked on another replica went on working here until it ended.
   */
  #readIdentities(): Promise<void> {
    this.#identityReads ??= (async () => {
      while (this.#identityDue) {
        const due = this.#identityDue;
        this.#identityDue = undefined;
        try {
          await this.#readIdentity(due);
        } catch (err) {
          this.#failed(err);
        }
      }
      this.#identityReads = null;
    })();
    return this.#identityReads;
  }

  /** Does what is due, one thing at a time, until nothing is: what is asked meanwhile joins the work under way. */
  #catchUp(): Promise<void> {
    // With nothing due the run would end before it was stored, and stay stored as under way.
    if (!this.#refreshing && !this.#reloadDue && !this.#policiesDue && !this.#kvmDue) return Promise.resolve();
    this.#refreshing ??= (async () => {
      while (this.#reloadDue || this.#policiesDue || this.#kvmDue) {
        // What is read from here on holds every change committed so far.
        const reload = this.#reloadDue;
        const policies = !reload && this.#policiesDue;
        const kvm = reload ? undefined : this.#kvmDue;
        this.#reloadDue = false;
        this.#policiesDue = false;
        this.#kvmDue = undefined;
        try {
          if (reload) await this.#reload();
          // Entries first: policies applied with their maps then find them.
          if (kvm) await this.#readKvm(kvm);
          if (policies) await this.#reloadPolicies();
          this.#retryDelayMs = RETRY_MIN_MS;
        } catch (err) {
          this.#failed(err);
        }
      }
      this.#refreshing = null;
    })();
    return this.#refreshing;
  }

  #failed(err: unknown): void {
    const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
    this.#logger.error({ problems }, 'reloading API management from the store failed; the last good state stays');
    // The change that asked for this reload (or a reconnect's "reload everything") is not told again: without a retry
    // this replica would keep serving the stale state (revoked keys working) until some later change. A bad stored
    // manifest is not retried: it would fail the same way.
    if (!(err instanceof ConfigError)) this.#retryLater();
  }

  /**
   * Everything again, for a change that cannot say what it touched (or a reconnect, which may have missed some). The
   * keys are built beside the ones in force, between requests; key changes served meanwhile are served again over them.
   */
  async #reload(): Promise<void> {
    this.#servedDuringReload = [];
    try {
      const snapshot = await withStallTimeout((progress) => this.db.loadSnapshot(progress), SNAPSHOT_TIMEOUT_MS, 'loading the snapshot');
      const identity = await SnapshotIdentity.load(snapshot);
      for (const served of this.#servedDuringReload) identity.replace(served.refs, served.rows);
      this.#policies = policiesOf(snapshot);
      this.#identity = identity;
      this.#identityServedAt = performance.now();
      this.#kvm.load(snapshot.kvmEntries);
    } finally {
      this.#servedDuringReload = undefined;
    }
    this.#compile(this.#fileManifests, this.#policies);
  }

  /** A policy change: the keys stay, their grants resolved against the new products and operation sets. */
  async #reloadPolicies(): Promise<void> {
    const policies = await withTimeout(this.db.loadPolicyRows(), SNAPSHOT_TIMEOUT_MS, 'loading the policies');
    this.#policies = policies;
    this.#identity.relink(policies);
    this.#compile(this.#fileManifests, policies);
  }

  async #readIdentity(due: IdentityDue): Promise<void> {
    const refs = { appIds: [...due.appIds], developerIds: [...due.developerIds], keyIds: [...due.keyIds] };
    this.#serve(refs, await withTimeout(this.db.loadIdentityRows(refs), SNAPSHOT_TIMEOUT_MS, 'reading keys again'));
  }

  async #readKvm(which: Map<string, KvmEntryRef> | 'all'): Promise<void> {
    if (which === 'all') {
      this.#kvm.load(await withStallTimeout((progress) => this.db.kvm.listAll(progress), SNAPSHOT_TIMEOUT_MS, 'loading the key-value map entries'));
      return;
    }
    for (const e of which.values()) {
      this.#kvm.update(e, await withTimeout(this.db.kvm.get(e.scope as KvmScope, e.mapName, e.key), SNAPSHOT_TIMEOUT_MS, 'reading a key-value map entry'));
    }
  }

  #compile(fileManifests: readonly Manifest[], snapshot: PolicyRows): void {
    this.#install(this.#build(fileManifests, snapshot, this.#logger), fileManifests);
  }

  #install(engine: PolicyEngine, fileManifests: readonly Manifest[]): void {
    this.#kvm.useFileMaps(fileManifests);
    this.#engine = engine;
    this.#hooks = { ...engine.hooks, quotaReport: (ctx: RequestContext) => engine.quotaReport(ctx) };
    this.onHooks(this.#hooks);
  }

  /**
   * Fails closed: every data-plane request is refused until a change through the admin API lets the policies build
   * (refresh() then installs them). Serving without the stored policies instead would drop whatever they enforce.
   */
  #refuseEverything(problems: readonly string[]): void {
    this.#logger.error({ problems }, 'the policies cannot be built from what the store holds; every request is refused (500 extension_failed) until the admin API fixes it');
    const refuse = (): never => {
      throw gatewayError('TG_ERR_EXTENSION_FAILED', 'API management cannot build its policies from what it stores; an operator must fix them through the admin API');
    };
    this.#hooks = { intercept: refuse, authenticate: refuse };
    this.onHooks(this.#hooks);
  }

  /**
   * What compiling the policies over this store view would refuse (ConfigError problems), without installing them:
   * an apply checks its uncommitted writes with it, since a stored manifest the engine cannot build (an OpenAPI
   * pattern ajv refuses, say) would otherwise be accepted and then stop every later start of the gateway.
   */
  async compileProblems(store: StoreView, before?: readonly Manifest[]): Promise<string[]> {
    const snapshot = await store.loadPolicyRows();
    const widened = before ? widenedTemplates(before, this.#manifestsOf(this.#fileManifests, snapshot, silentLogger)) : [];
    return [...this.#problemsOf(this.#fileManifests, snapshot), ...widened];
  }

  /** The manifests of this store view as the engine reads them: a change's `before` for compileProblems. */
  async policyManifests(store: StoreView): Promise<readonly Manifest[]> {
    return this.#manifestsOf(this.#fileManifests, await store.loadPolicyRows(), silentLogger);
  }

  /**
   * What building the policies from these would refuse, without installing them (nothing logged), and why a stored
   * policy no template lists cannot be built (which a load only logs); [] when every one builds.
   */
  #problemsOf(fileManifests: readonly Manifest[], snapshot: PolicyRows): string[] {
    try {
      const engine = this.#build(fileManifests, snapshot, silentLogger);
      if (engine.enabled) return [...engine.unlistedProblems];
      // Off, the engine builds nothing; what is applied meanwhile runs once an APIMExtensionPolicy is, so it is checked now.
      return checkTemplates(this.#manifestsOf(fileManifests, snapshot, silentLogger), registerBuiltins(), this.#flowDeps(silentLogger));
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  }

  /**
   * What the engine is built from: the files' manifests and what the admin API stored. A stored object a file now
   * declares (same kind and name) is the file's: left out until syncFileManifests removes it.
   */
  #manifestsOf(fileManifests: readonly Manifest[], snapshot: PolicyRows, logger: Logger): Manifest[] {
    const declared = new Set(fileManifests.map((m) => `${m.kind}/${m.metadata.name}`));
    const stored: Manifest[] = [];
    snapshot.manifests.forEach((m, i) => {
      if (m.owner !== 'file' && !declared.has(`${m.kind}/${m.name}`)) keepValid(stored, m, i, logger);
    });
    // Products made through the admin API may name templates (templateRefs); the files' products are in fileManifests.
    return [...fileManifests, ...stored, ...productsNamingTemplates(snapshot, (p) => p.owner !== 'file' && !declared.has(`APIProduct/${p.name}`), logger)];
  }

  /**
   * At start there is no earlier configuration in memory, but the store holds the products the last run had (the
   * files' among them): a product that named a template then and is gone now would make the template gateway-wide.
   */
  #widenedSinceLastRun(apim: readonly Manifest[], snapshot: PolicyRows): string[] {
    const after = this.#manifestsOf(apim, snapshot, silentLogger);
    const before = [...after.filter((m) => m.kind === 'ApimTemplate'), ...productsNamingTemplates(snapshot, () => true, silentLogger)];
    return widenedTemplates(before, after);
  }

  #build(fileManifests: readonly Manifest[], snapshot: PolicyRows, logger: Logger): PolicyEngine {
    return createPolicyEngine({ manifests: this.#manifestsOf(fileManifests, snapshot, logger), ...this.#flowDeps(logger) });
  }

  /** What the policies are built with: this process's counters, keys, key-value maps, caches and tracer. */
  #flowDeps(logger: Logger): FlowDeps {
    return { counters: this.counters, identity: this.#identitySource, logger, now: Date.now, kvm: this.#kvm, caches: this.caches, promptCalibration: this.#promptCalibration, tokensInFlight: this.#tokensInFlight, onCounterError: this.#onCounterError, tracer: this.#tracer };
  }

  #retryLater(): void {
    if (this.#closed || this.#retryTimer) return;
    const delay = this.#retryDelayMs;
    this.#retryDelayMs = Math.min(delay * 2, RETRY_MAX_MS);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.refresh();
    }, delay);
    this.#retryTimer.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#unsubscribe();
    await this.settled();
    await this.counters.close();
    await this.caches.close();
    await this.db.close();
  }
}

/** A stored manifest as the engine reads it; one that no longer validates is logged and left out. */
function keepValid(into: Manifest[], raw: { apiVersion: string; kind: string; name: string; spec: unknown }, i: number, logger: Logger): void {
  const r = validateDocument({ apiVersion: raw.apiVersion, kind: raw.kind, metadata: { name: raw.name }, spec: raw.spec }, 'admin-api', i);
  if (r.manifest) into.push(r.manifest);
  else logger.error({ problems: r.problems }, 'a stored manifest no longer validates; it is ignored');
}

/** The stored products `which` selects that name templates (templateRefs), as APIProduct manifests. */
function productsNamingTemplates(snapshot: PolicyRows, which: (p: PolicyRows['products'][number]) => boolean, logger: Logger): Manifest[] {
  const out: Manifest[] = [];
  snapshot.products.forEach((p, i) => {
    if (which(p) && p.spec.templateRefs !== undefined) {
      keepValid(out, { apiVersion: 'apim.googleapis.com/v1', kind: 'APIProduct', name: p.name, spec: { ...p.spec, displayName: p.displayName || p.name } }, snapshot.manifests.length + i, logger);
    }
  });
  return out;
}
