// `tollgate serve`: the gateway from --config manifests, until SIGTERM/SIGINT (then a graceful shutdown); SIGHUP
// reloads the configuration.
import { Command, Option } from 'commander';
import { ConfigError } from '../config/manifest.js';
import { CounterStoreUnavailableError } from '../store/counters/errors.js';
import { DatabaseConfigError, DatabaseOpenError, redactUrl } from '../store/errors.js';
import { redisUrlProblem } from '../store/redis-target.js';
import { createLogger, envLogLevel, envLogLevelProblem } from '../lib/logger.js';
import { ListenError, type ListenerName } from '../gateway/listen.js';
import type { Gateway } from '../gateway/gateway.js';
import { TlsFilesError, type TlsFileRole } from '../lib/tls-files.js';
import { KvmCipher } from '../apim/kvm-cipher.js';
import { readAdminToken, readPreviousAdminTokens } from './admin-token.js';
import { collect, configFailure, flagFailure, parsePort, parseRoles, untilSignal } from './options.js';

export function serveCommand(): Command {
  return new Command('serve')
    .description('run the gateway')
    .requiredOption('--config <path>', 'manifest file or directory (repeatable)', collect)
    .option('--port <n>', 'data-plane port', parsePort, 8080)
    .option('--admin-port <n>', 'admin API port', parsePort, 8081)
    .option('--extproc-port <n>', 'open the ext_proc gRPC listener on this port', parsePort)
    // Also from the environment: a password in argv is visible to every user of the host (`ps`, /proc/PID/cmdline).
    .addOption(new Option('--db <url>', 'sqlite:FILE or postgres://...').env(DB_ENV).argParser(trimmed).default(DEFAULT_DB))
    .addOption(new Option('--redis <url>', 'share counters and caches through Redis: redis://, rediss://, redis+sentinel://HOSTS/NAME or redis+cluster://HOSTS').env(REDIS_ENV).argParser(trimmed))
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'private key for --tls-cert (PEM)')
    .option('--extproc-roles <list>', 'what the ext_proc listener plays: pdp (policy decision point), epp (endpoint picker), or both', parseRoles)
    .addOption(new Option('--extproc-body-mode <mode>', "Envoy's request_body_mode, which its messages do not tell (default: a body message without end_of_stream is a STREAMED chunk)").choices(['BUFFERED', 'BUFFERED_PARTIAL', 'STREAMED']))
    .addOption(new Option('--extproc-response-body-mode <mode>', "Envoy's response_body_mode; told, a stream that ends before an answer's body does is a hang-up (default: unknown, as NONE or STREAMED)").choices(['BUFFERED', 'STREAMED']))
    .option('--extproc-tls-cert <file>', 'serve ext_proc over TLS with this certificate (PEM)')
    .option('--extproc-tls-key <file>', 'private key for --extproc-tls-cert (PEM)')
    .option('--extproc-tls-ca <file>', 'require client certificates this CA signed (mTLS)')
    .action(async (opts, cmd: Command) => {
      if (!!opts.tlsCert !== !!opts.tlsKey) cmd.error('tollgate serve: --tls-cert and --tls-key go together', { exitCode: 2 });
      if (!!opts.extprocTlsCert !== !!opts.extprocTlsKey) cmd.error('tollgate serve: --extproc-tls-cert and --extproc-tls-key go together', { exitCode: 2 });
      const extprocFlag = ['extprocRoles', 'extprocBodyMode', 'extprocResponseBodyMode', 'extprocTlsCert', 'extprocTlsKey', 'extprocTlsCa'].find((k) => opts[k] !== undefined);
      if (extprocFlag && opts.extprocPort === undefined) cmd.error(`tollgate serve: --${extprocFlag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --extproc-port`, { exitCode: 2 });
      if (opts.extprocTlsCa && !opts.extprocTlsCert) cmd.error('tollgate serve: --extproc-tls-ca needs --extproc-tls-cert and --extproc-tls-key', { exitCode: 2 });
      const sources = storeSources(cmd, opts);
      // ioredis would read any other URL as a Unix socket path and fail with a puzzling ENOENT.
      const redisProblem = opts.redis === undefined ? undefined : redisUrlProblem(opts.redis);
      if (redisProblem) cmd.error(`tollgate serve: ${sources.redis}: ${redisProblem}, got "${redactUrl(opts.redis)}"`, { exitCode: 2 });
      const admin = readAdminToken(process.env);
      if (admin.problem) cmd.error(`tollgate serve: ${admin.problem}`, { exitCode: 2 });
      const previousAdmin = readPreviousAdminTokens(process.env);
      if (previousAdmin.problem) cmd.error(`tollgate serve: ${previousAdmin.problem}`, { exitCode: 2 });
      const levelProblem = envLogLevelProblem();
      if (levelProblem) cmd.error(`tollgate serve: ${levelProblem}`, { exitCode: 2 });
      // Checked with the other variables: found once API management was made, it exited 1 with the store already
      // opened (and written) and left it, Redis and the caches unclosed.
      try {
        KvmCipher.fromEnv();
      } catch (err) {
        cmd.error(`tollgate serve: ${(err as Error).message}`, { exitCode: 2 });
      }
      const logger = createLogger();
      // SIGHUP asks for the configuration to be read again (nginx, HAProxy, systemd's ExecReload): Node's default
      // ended the process at once, cutting the requests in flight. One during the start reloads once it has started.
      let starting: Promise<Gateway> | undefined;
      process.on('SIGHUP', () => {
        logger.info({ signal: 'SIGHUP' }, 'reloading the configuration');
        void starting?.then(
          (g) => g.reload(),
          () => {},
        );
      });
      // Loaded here, not with the CLI: the other commands do without the gateway's modules.
      const { startGateway } = await import('../gateway/gateway.js');
      let gateway;
      try {
        gateway = await (starting = startGateway({
          configPaths: opts.config,
          port: opts.port,
          adminPort: opts.adminPort,
          adminToken: admin.token,
          adminPreviousTokens: previousAdmin.tokens,
          tls: opts.tlsCert ? { cert: opts.tlsCert, key: opts.tlsKey } : undefined,
          db: opts.db,
          redis: opts.redis,
          extprocPort: opts.extprocPort,
          extproc: {
            roles: opts.extprocRoles,
            requestBodyMode: opts.extprocBodyMode,
            responseBodyMode: opts.extprocResponseBodyMode,
            tls: opts.extprocTlsCert ? { cert: opts.extprocTlsCert, key: opts.extprocTlsKey, ca: opts.extprocTlsCa } : undefined,
          },
          logger,
          logLevelFromSettings: envLogLevel() === undefined,
        }));
      } catch (err) {
        if (err instanceof ConfigError) {
          throw configFailure(err.problems);
        }
        // A --db, --redis, port or TLS file that cannot be used is a bad flag: one line naming it, exit code 2 (not a stack trace).
        const flag = startupFlagError(err, opts, sources);
        if (flag) throw flagFailure(flag);
        throw err;
      }
      logger.info({ url: gateway.url, admin: gateway.adminUrl, ...(gateway.extprocPort > 0 && { extproc: gateway.extprocPort }) }, 'tollgate is serving');
      const signal = await untilSignal();
      logger.info({ signal, inflight: gateway.dataPlane.inflight }, 'shutting down');
      await gateway.close();
    });
}

/** The flag that sets each listener's port. */
const PORT_FLAGS: Record<ListenerName, string> = { 'data plane': '--port', admin: '--admin-port', ext_proc: '--extproc-port' };

/** `--port: cannot listen on 0.0.0.0:8080: the address is already in use`: a listener that could not open, by its flag. */
export function listenFlagError(err: ListenError): string {
  return `${PORT_FLAGS[err.listener]}: cannot listen on ${err.host}:${err.port}: ${err.reason}`;
}

const TLS_FLAGS: Record<Exclude<TlsFileRole, 'ca'>, string> = { cert: '--tls-cert', key: '--tls-key', pair: '--tls-cert/--tls-key' };

const EXTPROC_TLS_FLAGS: Record<TlsFileRole, string> = { cert: '--extproc-tls-cert', key: '--extproc-tls-key', ca: '--extproc-tls-ca', pair: '--extproc-tls-cert/--extproc-tls-key' };

const DB_ENV = 'TOLLGATE_DB';
const REDIS_ENV = 'TOLLGATE_REDIS';
const DEFAULT_DB = 'sqlite:./tollgate.db';

/** A Secret mounted as a file ends in a newline, which no URL holds. */
function trimmed(value: string): string {
  return value.trim();
}

/**
 * Where --db and --redis came from, as messages name them (`--db` or `TOLLGATE_DB`). A variable set but empty counts
 * as unset, as TOLLGATE_ADMIN_TOKEN does: compose files and charts write `VAR=${X:-}`.
 */
function storeSources(cmd: Command, opts: { db: string; redis?: string }): { db: string; redis: string } {
  const env = (key: 'db' | 'redis') => cmd.getOptionValueSource(key) === 'env';
  if (env('db') && opts.db === '') opts.db = DEFAULT_DB;
  if (env('redis') && opts.redis === '') opts.redis = undefined;
  return { db: env('db') && opts.db !== DEFAULT_DB ? DB_ENV : '--db', redis: env('redis') && opts.redis !== undefined ? REDIS_ENV : '--redis' };
}

/** The one-line message for a start-up failure caused by --db, --redis, a port or a TLS flag, or undefined for anything else. */
function startupFlagError(err: unknown, opts: { db: string; redis?: string }, sources: { db: string; redis: string }): string | undefined {
  if (err instanceof DatabaseConfigError || err instanceof DatabaseOpenError) return `${sources.db}: ${err.message}`;
  // The ext_proc listener reads its TLS files as it opens: the file is at fault, not the port.
  if (err instanceof ListenError && err.listener === 'ext_proc' && err.cause instanceof TlsFilesError) return `${EXTPROC_TLS_FLAGS[err.cause.role]}: ${err.cause.message}`;
  if (err instanceof ListenError) return listenFlagError(err);
  // The HTTPS listener's (it takes no CA file).
  if (err instanceof TlsFilesError && err.role !== 'ca') return `${TLS_FLAGS[err.role]}: ${err.message}`;
  if (err instanceof CounterStoreUnavailableError) return `${sources.redis} ${redactUrl(opts.redis ?? '')}: ${err.message}`;
  return undefined;
}
