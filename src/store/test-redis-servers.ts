// Redis deployments of their own for tests, next to the shared server (which must never be reconfigured): a cluster
// of three primaries, and a primary with a replica that one Sentinel watches. Each runs from a temporary directory,
// on free loopback ports, until stop(). Skipped (with the reason) where redis-server is not installed.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../lib/ports.js';
import { TcpProxy } from './test-tcp-proxy.js';

const run = promisify(execFile);

/** Why these deployments cannot be started here, or undefined: they need the shared Redis's binaries. */
export const REDIS_DEPLOYMENTS_SKIP = !process.env.REDIS_URL
  ? 'REDIS_URL not set'
  : spawnSync('redis-server', ['--version']).status !== 0
    ? 'redis-server is not installed'
    : undefined;

export interface DeploymentOptions {
  /** Required by every server and Sentinel; the deployment's url carries it. */
  password?: string;
  /** Every server and Sentinel speaks TLS only; the deployment's url is `rediss+...`. */
  tls?: TlsFiles;
}

/** PEM files: the servers' certificate and key (for 127.0.0.1), and the CA that signed them, which clients must trust. */
export interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

export interface RedisDeployment {
  /** For `--redis`. */
  url: string;
  stop(): Promise<void>;
}

export interface RedisClusterDeployment extends RedisDeployment {
  /**
   * Partitions the clients from every node (test-tcp-proxy.ts's stall: connections stay open, what is sent is held,
   * delivered only over a connection that still exists when the partition heals); call what it returns to heal it.
   */
  partition(nodes?: number[]): () => void;
  /** The URL naming node `index` alone as the way in. */
  urlOf(index: number): string;
  /** Resets the clients' connections to node `index` and refuses new ones until the promise it returns is called. */
  cut(index: number): Promise<() => Promise<void>>;
  /** Which node holds the slot of keys tagged `{tag}`. */
  ownerOf(tag: string): Promise<number>;
}

export interface RedisSentinelDeployment extends RedisDeployment {
  /** The primary's URL now, as Sentinel names it. */
  primary(): Promise<string>;
  /**
   * Has Sentinel promote the replica (once it holds every write so far); resolves once Sentinel names it as the
   * primary. The old primary is told to
   * follow it later (at Sentinel's next look at it, up to 10 s): until then it still takes writes, as in production.
   */
  failover(): Promise<void>;
}

async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // Not up yet.
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const userinfo = (password: string | undefined): string => (password === undefined ? '' : `:${encodeURIComponent(password)}@`);

/** Starts the processes of one deployment and stops every one of them (and removes their directory) together. */
class Processes {
  readonly #children: ChildProcess[] = [];
  constructor(
    readonly dir: string,
    /** Every server's and Sentinel's (`requirepass`), when set. */
    readonly password?: string,
    /** Servers then speak TLS only, on their port, to clients and to each other. */
    readonly tls?: TlsFiles,
  ) {
    // A test process that dies before its after hook must not leave servers behind.
    process.once('exit', () => {
      for (const child of this.#children) child.kill('SIGKILL');
    });
  }

  static async create(password?: string, tls?: TlsFiles): Promise<Processes> {
    return new Processes(await mkdtemp(join(tmpdir(), 'tollgate-redis-')), password, tls);
  }

  /** redis-cli's output for one command to the server or Sentinel on `port`. */
  async cli(port: number, ...args: string[]): Promise<string> {
    const env = this.password === undefined ? process.env : { ...process.env, REDISCLI_AUTH: this.password };
    const tls = this.tls ? ['--tls', '--cacert', this.tls.ca] : [];
    return (await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...tls, ...args], { env })).stdout.trim();
  }

  async server(port: number, ...args: string[]): Promise<void> {
    const auth = this.password === undefined ? [] : ['--requirepass', this.password, '--masterauth', this.password];
    const { tls } = this;
    const listen = tls
      ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no', '--tls-replication', 'yes']
      : ['--port', String(port)];
    const child = spawn('redis-server', [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, ...auth, ...args], { stdio: 'ignore' });
    this.#children.push(child);
    await until(`redis-server on ${port}`, async () => (await this.cli(port, 'PING')) === 'PONG');
  }

  /** A Sentinel watching `tollgate` (the primary on `primary`, its replica on `replica`). */
  async sentinel(port: number, primary: number, replica: number): Promise<void> {
    const file = join(this.dir, `sentinel-${port}.conf`);
    const { tls } = this;
    const listen = tls
      ? ['port 0', `tls-port ${port}`, `tls-cert-file ${tls.cert}`, `tls-key-file ${tls.key}`, `tls-ca-cert-file ${tls.ca}`, 'tls-auth-clients no', 'tls-replication yes']
      : [`port ${port}`];
    const config = [
      ...listen,
      'bind 127.0.0.1',
      `dir ${this.dir}`,
      `sentinel monitor tollgate 127.0.0.1 ${primary} 1`,
      // Told of the replica up front: found through the primary's INFO, it took Sentinel up to 10 s to know it.
      `sentinel known-replica tollgate 127.0.0.1 ${replica}`,
      'sentinel down-after-milliseconds tollgate 1000',
      'sentinel failover-timeout tollgate 5000',
      // Quoted: a password may hold spaces (Redis reads a configuration line's double quotes and backslashes as JSON does).
      ...(this.password === undefined ? [] : [`sentinel auth-pass tollgate ${JSON.stringify(this.password)}`, `requirepass ${JSON.stringify(this.password)}`]),
    ];
    await writeFile(file, `${config.join('\n')}\n`);
    this.#children.push(spawn('redis-server', [file, '--sentinel'], { stdio: 'ignore' }));
    await until(`sentinel on ${port}`, async () => (await this.cli(port, 'PING')) === 'PONG');
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.#children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGKILL');
        await once(child, 'exit');
      }),
    );
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * What `open` makes on a deployment started for it alone: its dispose() stops the deployment too.
 * @example const cache = await onRedisDeployment(startRedisCluster, (url) => redisCache(url));
 */
export async function onRedisDeployment<T extends { dispose(): Promise<void> }>(start: () => Promise<RedisDeployment>, open: (url: string) => Promise<T>): Promise<T> {
  const deployment = await start();
  try {
    const made = await open(deployment.url);
    return { ...made, dispose: () => made.dispose().finally(() => deployment.stop()) };
  } catch (err) {
    await deployment.stop();
    throw err;
  }
}

/** The first of node `i`'s slots (and past the last node's, 16,384). */
const firstSlot = (i: number): number => Math.floor((16384 * i) / 3);

/**
 * Three primaries sharing the 16,384 slots, no replicas. Clients reach each node through a TCP proxy of this process,
 * which the node announces as its address, so a test can partition them.
 */
export async function startRedisCluster(opts: DeploymentOptions = {}): Promise<RedisClusterDeployment> {
  const procs = await Processes.create(opts.password, opts.tls);
  const proxies: TcpProxy[] = [];
  try {
    const ports = [await freePort(), await freePort(), await freePort()];
    // The cluster bus on a port of its own (Redis 7): port + 10000, the default, may be taken or past 65535.
    const busPorts = [await freePort(), await freePort(), await freePort()];
    for (const [i, port] of ports.entries()) {
      const proxy = new TcpProxy({ host: '127.0.0.1', port });
      await proxy.start();
      proxies.push(proxy);
      const announce = opts.tls ? ['--tls-cluster', 'yes', '--cluster-announce-tls-port', String(proxy.port)] : ['--cluster-announce-port', String(proxy.port)];
      await procs.server(port, '--cluster-enabled', 'yes', '--cluster-port', String(busPorts[i]), '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '5000', '--cluster-announce-ip', '127.0.0.1', ...announce, '--cluster-announce-bus-port', String(busPorts[i]));
    }
    // What `redis-cli --cluster create` does, without its pauses of a second: a third of the slots each, then meet.
    for (const [i, port] of ports.entries()) {
      // Distinct epochs up front: nodes that all start at 0 settle who owns what slowly, by collisions.
      await procs.cli(port, 'CLUSTER', 'SET-CONFIG-EPOCH', String(i + 1));
      await procs.cli(port, 'CLUSTER', 'ADDSLOTSRANGE', String(firstSlot(i)), String(firstSlot(i + 1) - 1));
    }
    for (const [i, port] of ports.entries()) if (i > 0) await procs.cli(ports[0], 'CLUSTER', 'MEET', '127.0.0.1', String(port), String(busPorts[i]));
    // Every node must know the whole map before a client asks any of them for it.
    for (const port of ports) {
      await until(`cluster node ${port}`, async () => /cluster_state:ok/.test(await procs.cli(port, 'CLUSTER', 'INFO')) && /cluster_known_nodes:3/.test(await procs.cli(port, 'CLUSTER', 'INFO')));
    }
    const stop = async () => {
      await Promise.all(proxies.map((p) => p.close()));
      await procs.stop();
    };
    return {
      url: `${opts.tls ? 'rediss' : 'redis'}+cluster://${userinfo(opts.password)}${proxies.map((p) => `127.0.0.1:${p.port}`).join(',')}`,
      partition(nodes = [0, 1, 2]) {
        for (const i of nodes) proxies[i].stall();
        return () => nodes.forEach((i) => proxies[i].unstall());
      },
      urlOf: (index) => `${opts.tls ? 'rediss' : 'redis'}+cluster://${userinfo(opts.password)}127.0.0.1:${proxies[index].port}`,
      async cut(index) {
        await proxies[index].cut();
        return () => proxies[index].restore();
      },
      async ownerOf(tag) {
        const slot = Number(await procs.cli(ports[0], 'CLUSTER', 'KEYSLOT', tag));
        return [1, 2, 3].findIndex((i) => slot < firstSlot(i));
      },
      stop,
    };
  } catch (err) {
    await Promise.all(proxies.map((p) => p.close()));
    await procs.stop();
    throw err;
  }
}

/** A primary, its replica, and one Sentinel (quorum 1) watching them as `tollgate`. */
export async function startRedisSentinel(opts: DeploymentOptions = {}): Promise<RedisSentinelDeployment> {
  const procs = await Processes.create(opts.password, opts.tls);
  try {
    const [primary, replica, sentinel] = [await freePort(), await freePort(), await freePort()];
    // Redis waits 5 s for more replicas before a diskless full sync by default.
    await procs.server(primary, '--repl-diskless-sync-delay', '0');
    await procs.server(replica, '--replicaof', '127.0.0.1', String(primary));
    await until('replica in sync', async () => /master_link_status:up/.test(await procs.cli(replica, 'INFO', 'replication')));
    await procs.sentinel(sentinel, primary, replica);
    const primaryPort = async () => (await procs.cli(sentinel, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'tollgate')).split('\n')[1];
    return {
      url: `${opts.tls ? 'rediss' : 'redis'}+sentinel://${userinfo(opts.password)}127.0.0.1:${sentinel}/tollgate${opts.password === undefined ? '' : `?sentinelPassword=${encodeURIComponent(opts.password)}`}`,
      primary: async () => `redis://127.0.0.1:${await primaryPort()}`,
      async failover() {
        const before = await primaryPort();
        // Replication is asynchronous, and Sentinel does not wait for it: what the replica has not received yet would
        // be lost with the switch. Not what the tests look at, so it has everything first.
        await procs.cli(Number(before), 'WAIT', '1', '5000');
        // NOGOODSLAVE until Sentinel has heard from the replica lately enough to trust it.
        await until('sentinel accepts a failover', async () => (await procs.cli(sentinel, 'SENTINEL', 'FAILOVER', 'tollgate')) === 'OK');
        await until('sentinel failover', async () => (await primaryPort()) !== before);
      },
      stop: () => procs.stop(),
    };
  } catch (err) {
    await procs.stop();
    throw err;
  }
}
