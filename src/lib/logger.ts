// The process-wide structured logger (pino). Secrets and prompt text are never passed to it.
import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * TOLLGATE_LOG_LEVEL when set (and not empty). It wins over GatewaySettings.logging.level: `serve` lets the settings
 * set the level, at start and on every reload, only when it is not set.
 */
export function envLogLevel(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.TOLLGATE_LOG_LEVEL || undefined;
}

export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  return pino({
    name: opts.name ?? 'tollgate',
    level: opts.level ?? envLogLevel() ?? 'info',
    base: undefined,
    redact: { paths: ['*.authorization', '*.["x-api-key"]', 'headers.authorization', 'headers["x-api-key"]'], remove: true },
  });
}

/** A logger that drops everything: the default for libraries and tests that do not care. */
export const silentLogger: Logger = pino({ level: 'silent' });
