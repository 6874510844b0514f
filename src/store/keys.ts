// API keys, secrets and key ids: generation (uniform base62), hashing for storage, constant-time comparison.
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** 4 × 62: bytes below it map onto base62 uniformly with `% 62`; the rest are rejected (no modulo bias). */
const UNBIASED_BELOW = 248;

/** Recognisable to secret scanners and distinct from JWTs (three dotted parts) and OAuth tokens (`tgat_`). */
export const API_KEY_PREFIX = 'tg_';
export const API_KEY_PATTERN = /^tg_[0-9A-Za-z]{40}$/;

/** `length` characters of [0-9A-Za-z], each uniformly random (5.95 bits of entropy per character). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    // ~3% of bytes are rejected; ask for a little more than needed so one draw almost always suffices.
    for (const byte of randomBytes(length - out.length + 8)) {
      if (byte >= UNBIASED_BELOW) continue;
      out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** `tg_` + 40 base62 characters (238 bits). */
export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBase62(40);
}

/** The consumer secret paired with a key (238 bits). */
export function generateSecret(): string {
  return 'tgs_' + randomBase62(40);
}

/** A key's public identifier for URLs and logs (`key_` + 16 base62): random, so it reveals nothing of the key. */
export function generateKeyId(): string {
  return 'key_' + randomBase62(16);
}

/**
 * SHA-256 hex of a key or secret; only this is stored. A fast unsalted hash is enough because generated keys carry
 * 238 random bits: there is nothing to brute-force, and a deterministic hash lets the hot path find a key by lookup.
 */
export function hashKey(key: string): string {
  // The one-shot hash: a third of createHash's cost, and this runs on every request.
  return hash('sha256', key, 'hex');
}

/** Constant-time string equality; hashing first makes the lengths equal, so not even the length leaks. */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(hash('sha256', a, 'buffer'), hash('sha256', b, 'buffer'));
}

/** Whether `secret` is the one whose hash was stored. */
export function verifySecret(secret: string, secretHash: string): boolean {
  return safeEqual(hashKey(secret), secretHash);
}
