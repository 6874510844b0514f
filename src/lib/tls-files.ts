// Reading TLS files (a listener's, a CA bundle), with failures that name which file (or the pair) the operator must fix.
import { X509Certificate } from 'node:crypto';
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

/**
 * A PEM bundle of CA certificates, refused when no certificate in it parses or one does not: TLS stacks take such a
 * file and then trust nothing in it (grpc-js's listener refuses every client, undici every server) without a word.
 */
export function readCaFile(file: string): Buffer {
  const ca = readTlsFile('ca', file);
  const pems = ca.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g) ?? [];
  const parses = (pem: string) => {
    try {
      return new X509Certificate(pem).raw.length > 0;
    } catch {
      return false;
    }
  };
  if (pems.length === 0 || !pems.every(parses)) throw new TlsFilesError('ca', `${file} holds no certificate, or one that cannot be read (PEM expected)`);
  return ca;
}

/** OpenSSL's reason (no PEM start line, a key that does not match the certificate) is what the operator must fix. */
export function unusablePair(err: unknown): TlsFilesError {
  return new TlsFilesError('pair', `the certificate and key cannot be used: ${(err as Error).message}`, err);
}
