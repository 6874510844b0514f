// API management at run time: the store, the counters, the in-memory identity snapshot and the compiled policy
// engine, kept current. Store changes (this replica's or, through PostgreSQL NOTIFY, another's) refresh the
// snapshot; configuration reloads recompile the engine. The hot path only ever reads memory.
import { Gauge, type Registry } from 'prom-client';
import { ConfigError, validateDocument, type Manifest } from '../config/manifest.js';
import type { GatewayHooks } from '../gateway/hooks.js';
import type { RequestContext } from '../gateway/context.js';
import type { Logger } from '../lib/logger.js';
import { createPolicyEngine, type IdentitySource, type KeyRecord, type PolicyEngine } from '../policy/index.js';
import { openCounterStore, openDatabase, type CounterStore, type Database, type Snapshot } from '../store/index.js';
import { syncFileManifests } from './file-manifests.js';
import { SnapshotIdentity } from './snapshot-identity.js';

export interface ApiManagementOptions {
  /** `sqlite:FILE`, `sqlite::memory:` or `postgres://...` */
  db: string;
  /** PostgreSQL schema (tests use a fresh one per file). */
  dbSchema?: string;
  /** Share counters through Redis; in memory when absent. */
  redis?: string;
  redisKeyPrefix?: string;
  logger: Logger;
  registry: Registry;
}

/** Manifests of the API-management kinds (apim.googleapis.com). */
export function apimManifests(manifests: readonly Manifest[]): Manifest[] {
  return manifests.filter((m) => m.apiVersion.startsWith('apim.googleapis.com/'));
}

export class ApiManagement {
  readonly db: Database;
  readonly counters: CounterStore;
  readonly #logger: Logger;
  #snapshot!: Snapshot;
  #identity!: SnapshotIdentity;
  #engine!: PolicyEngine;
  #fileManifests: Manifest[] = [];
  #refreshing: Promise<void> | null = null;
  #refreshAgain = false;
  #unsubscribe: () => void;
  #hooks: GatewayHooks = {};
  /** Called with the hooks of each newly compiled engine. */
  onHooks: (hooks: GatewayHooks) => void = () => {};

  /** Delegates to the current snapshot, so a revoked key stops working without recompiling the engine. */
  readonly #identitySource: IdentitySource = { findKeyByHash: (hash: string): KeyRecord | undefined => this.#identity.findKeyByHash(hash) };

  private constructor(db: Database, counters: CounterStore, logger: Logger, registry: Registry) {
    this.db = db;
    this.counters = counters;
    this.#logger = logger;
    this.#unsubscribe = db.onChange(() => void this.refresh());
    const self = this;
    new Gauge({
      name: 'tollgate_apim_credentials',
      help: 'API keys in the in-memory snapshot',
      registers: [registry],
      collect() {
        this.set(self.#identity?.size ?? 0);
      },
    });
    new Gauge({
      name: 'tollgate_counter_store_failed_open_total',
      help: 'Requests let through uncounted because the counter store could not answer (failOpen)',
      registers: [registry],
      collect() {
        this.set(self.#engine?.failedOpen ?? 0);
      },
    });
  }

  static async open(opts: ApiManagementOptions, fileManifests: readonly Manifest[]): Promise<ApiManagement> {
    const db = await openDatabase(opts.db, { schema: opts.dbSchema, logger: opts.logger });
    let counters: CounterStore;
    try {
      counters = await openCounterStore(opts.redis, { keyPrefix: opts.redisKeyPrefix, logger: opts.logger });
    } catch (err) {
      await db.close();
      throw err;
    }
    const apim = new ApiManagement(db, counters, opts.logger, opts.registry);
    try {
      await apim.useFileManifests(fileManifests);
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

  get engine(): PolicyEngine {
    return this.#engine;
  }

  /** A configuration (re)load: the file's products and operation sets into the store, then a new engine. */
  async useFileManifests(manifests: readonly Manifest[]): Promise<void> {
    const apim = apimManifests(manifests);
    // Compile first: a bad policy configuration is refused before anything is written.
    this.#snapshot ??= await this.db.loadSnapshot();
    this.#identity ??= new SnapshotIdentity(this.#snapshot);
    this.#compile(apim, this.#snapshot);
    await syncFileManifests(this.db, apim);
    this.#fileManifests = apim;
    await this.refresh();
  }

  /** Reloads the snapshot (coalescing bursts of changes) and recompiles the engine. */
  refresh(): Promise<void> {
    if (this.#refreshing) {
      this.#refreshAgain = true;
      return this.#refreshing;
    }
    this.#refreshing = (async () => {
      do {
        this.#refreshAgain = false;
        try {
          const snapshot = await this.db.loadSnapshot();
          this.#snapshot = snapshot;
          this.#identity = new SnapshotIdentity(snapshot);
          this.#compile(this.#fileManifests, snapshot);
        } catch (err) {
          const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
          this.#logger.error({ problems }, 'reloading API management from the store failed; the last good state stays');
        }
      } while (this.#refreshAgain);
      this.#refreshing = null;
    })();
    return this.#refreshing;
  }

  #compile(fileManifests: readonly Manifest[], snapshot: Snapshot): void {
    const stored: Manifest[] = [];
    snapshot.manifests.forEach((m, i) => {
      if (m.owner === 'file') return;
      const r = validateDocument({ apiVersion: m.apiVersion, kind: m.kind, metadata: { name: m.name }, spec: m.spec }, 'admin-api', i);
      if (r.manifest) stored.push(r.manifest);
      else this.#logger.error({ problems: r.problems }, 'a stored manifest no longer validates; it is ignored');
    });
    const engine = createPolicyEngine({ manifests: [...fileManifests, ...stored], counters: this.counters, identity: this.#identitySource, logger: this.#logger });
    this.#engine = engine;
    this.#hooks = { ...engine.hooks, quotaReport: (ctx: RequestContext) => engine.quotaReport(ctx) };
    this.onHooks(this.#hooks);
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    await this.#refreshing;
    await this.counters.close();
    await this.db.close();
  }
}
