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

/** The curve each ES algorithm signs on (RFC 7518 §3.4), by Node's name for it and the name JOSE gives it. */
const CURVES: Partial<Record<JwtAlgorithm, { node: string; jose: string }>> = {
  ES256: { node: 'prime256v1', jose: 'P-256' },
  ES384: { node: 'secp384r1', jose: 'P-384' },
  ES512: { node: 'secp521r1', jose: 'P-521' },
};

/** RFC 7518 §3.3 and §3.5; jose refuses a shorter key when it signs or verifies. */
const MIN_RSA_BITS = 2048;

/** Why jose would refuse `key` when it signs or verifies with `alg`, or null when it would not. */
function unusableFor(key: KeyObject, alg: JwtAlgorithm): string | null {
  const type = key.asymmetricKeyType;
  const { namedCurve, modulusLength } = key.asymmetricKeyDetails ?? {};
  const curve = CURVES[alg];
  if (curve) {
    if (type !== 'ec') return `a ${type} key cannot serve ${alg}`;
    return namedCurve === curve.node ? null : `${alg} needs a ${curve.jose} key, this one is on ${namedCurve}`;
  }
  // jose reads a KeyObject through its JWK, which Node cannot give for an RSASSA-PSS-only key (id-RSASSA-PSS).
  if (type === 'rsa-pss') return `a rsa-pss key cannot serve ${alg}: give it as a plain RSA key (rsaEncryption)`;
  if (type !== 'rsa') return `a ${type} key cannot serve ${alg}`;
  return modulusLength !== undefined && modulusLength >= MIN_RSA_BITS ? null : `${alg} needs an RSA key of at least ${MIN_RSA_BITS} bits, this one has ${modulusLength}`;
}

function checkType(key: KeyObject, algorithms: readonly JwtAlgorithm[], field: string): KeyObject {
  for (const alg of algorithms) {
    const problem = unusableFor(key, alg);
    if (problem) throw new Error(`${field}: ${problem}`);
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
