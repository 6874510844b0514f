// Certificates for tests of https model servers, made with openssl in a directory: a CA and leaves it signs.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * `<ca>.pem`/`<ca>.key`, a CA valid for a day, and for each leaf `<name>.pem`/`<name>.key` signed by it with the
 * subjectAltName given (`IP:127.0.0.1`, `DNS:other`).
 */
export function certificates(dir: string, leaves: Record<string, string>, ca = 'ca'): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '1', '-subj', `/CN=test CA ${ca}`);
  for (const [name, san] of Object.entries(leaves)) {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
  }
}
