// The process-wide structured logger (pino). Secrets and prompt text are never passed to it.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  return pino({
    name: opts.name ?? 'tollgate',
    level: opts.level ?? process.env.TOLLGATE_LOG_LEVEL ?? 'info',
    base: undefined,
    redact: { paths: ['*.authorization', '*.["x-api-key"]', 'headers.authorization', 'headers["x-api-key"]'], remove: true },
  });
}

/** A logger that drops everything: the default for libraries and tests that do not care. */
export const silentLogger: Logger = pino({ level: 'silent' });
