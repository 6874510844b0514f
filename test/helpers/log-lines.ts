// A gateway's log kept in memory, for tests that read what it said (the access log among it).
import { pino, type Logger } from 'pino';

/** The access-log fields tests read. */
export interface AccessLine {
  msg: string;
  requestId?: string;
  status?: number;
  errorCode?: string;
  attempts?: number;
  endpoint?: string;
}

/** A logger at `info` whose every line is parsed into `lines`. */
export function collectingLogger<T = AccessLine>(): { logger: Logger; lines: T[] } {
  const lines: T[] = [];
  return { logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as T) }), lines };
}
