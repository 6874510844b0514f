// Reading a listener's TLS files, with failures that name which file (or the pair) the operator must fix.
import { readFileSync } from 'node:fs';

/** Which TLS file a failure is about: one that cannot be read, a CA file without a certificate, or cert and key together. */
export type TlsFileRole = 'cert' | 'key' | 'ca' | 'pair';

/** A TLS file of a listener cannot be used: which one (or the pair), and why. */
export class TlsFilesError extends Error {
  readonly role: TlsFileRole;

  constructor(role: TlsFileRole, message: string, cause?: unknown) {
    super(message, { cause });
    this.role = role;
  }
}

export function readTlsFile(role: TlsFileRole, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new TlsFilesError(role, `cannot read ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message}`, err);
  }
}

/** OpenSSL's reason (no PEM start line, a key that does not match the certificate) is what the operator must fix. */
export function unusablePair(err: unknown): TlsFilesError {
  return new TlsFilesError('pair', `the certificate and key cannot be used: ${(err as Error).message}`, err);
}
