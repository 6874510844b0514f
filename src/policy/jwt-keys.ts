// Key material for the JWT policies, built once at configuration load: HMAC secrets (RFC 7518 §3.2 lengths) and PEM
// keys checked against the algorithms they must serve, so a mismatch is a config error rather than a 401 later.
import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import type { JwtAlgorithm, KeySource } from '../config/apim-kinds.js';
import { lazyImport } from '../lib/lazy-require.js';
import { resolveSecret } from './secret-source.js';

/** jose, loaded by the first JWT policy compiled; each factory starts the load so no request waits for it. */
export const loadJose = lazyImport(() => import('jose'));

/** Starts loading jose now; a failure surfaces where a request awaits it. */
export function prefetchJose(): void {
  loadJose().catch(() => {});
}

export type AlgorithmFamily = 'hmac' | 'rsa' | 'ec';

export function familyOf(alg: JwtAlgorithm): AlgorithmFamily {
  return alg.startsWith('HS') ? 'hmac' : alg.startsWith('ES') ? 'ec' : 'rsa';
}

/** HS256 needs at least 32 bytes of secret, HS384 48, HS512 64. */
export function hmacKey(source: KeySource, algorithms: readonly JwtAlgorithm[], field: string): KeyObject {
  const secret = Buffer.from(resolveSecret(source, field), 'utf8');
  const needed = Math.max(...algorithms.map((a) => Number(a.slice(2)) / 8));
  if (secret.length < needed) throw new Error(`${field}: ${algorithms.join(', ')} needs a secret of at least ${needed} bytes`);
  return createSecretKey(secret);
}

function checkType(key: KeyObject, algorithms: readonly JwtAlgorithm[], field: string): KeyObject {
  const type = key.asymmetricKeyType;
  for (const alg of algorithms) {
    const ok = familyOf(alg) === 'ec' ? type === 'ec' : type === 'rsa' || (type === 'rsa-pss' && alg.startsWith('PS'));
    if (!ok) throw new Error(`${field}: a ${type} key cannot serve ${alg}`);
  }
  return key;
}

export function publicKey(source: KeySource, algorithms: readonly JwtAlgorithm[], field: string): KeyObject {
  const pem = resolveSecret(source, field);
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new Error(`${field}: not a PEM public key`);
  }
  return checkType(key, algorithms, field);
}

export function privateKey(source: KeySource, algorithms: readonly JwtAlgorithm[], field: string): KeyObject {
  const pem = resolveSecret(source, field);
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    // Never echo the parser's message: it may quote the key.
    throw new Error(`${field}: not a PEM private key`);
  }
  return checkType(key, algorithms, field);
}
