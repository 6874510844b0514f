// The process-wide structured logger (pino). Secrets and prompt text are never passed to it.
import { pino, type Logger } from 'pino';

export type { Logger };

/** The levels there are (GatewaySettings.logging.level, TOLLGATE_LOG_LEVEL). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/**
 * TOLLGATE_LOG_LEVEL when set (and not empty). It wins over GatewaySettings.logging.level: `serve` lets the settings
 * set the level, at start and on every reload, only when it is not set.
 */
export function envLogLevel(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.TOLLGATE_LOG_LEVEL || undefined;
}

/** Why TOLLGATE_LOG_LEVEL cannot be used, for the one line a command exits 2 with (pino's own says "custom levels"). */
export function envLogLevelProblem(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const level = envLogLevel(env);
  if (level === undefined || (LOG_LEVELS as readonly string[]).includes(level)) return undefined;
  // Quoted as JSON: a value with a line break in it stays on the one line.
  return `TOLLGATE_LOG_LEVEL: ${JSON.stringify(level)} is not one of ${LOG_LEVELS.join(', ')}`;
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
