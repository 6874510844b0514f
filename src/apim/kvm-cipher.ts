// Encryption of key-value map values at rest: AES-256-GCM under the key in TOLLGATE_KVM_KEY (32 bytes, hex or base64);
// values written under earlier keys (TOLLGATE_KVM_PREVIOUS_KEYS) are still read, so the key can be changed.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { commaList } from '../lib/comma-list.js';

export const KVM_KEY_ENV = 'TOLLGATE_KVM_KEY';
const KVM_PREVIOUS_KEYS_ENV = 'TOLLGATE_KVM_PREVIOUS_KEYS';
const PREFIX = 'aes256gcm:';

function parseKey(raw: string, name: string): Buffer {
  const key = /^[0-9a-fA-F]{64}$/.test(raw) ? Buffer.from(raw, 'hex') : Buffer.from(raw, 'base64');
  if (key.length !== 32) throw new Error(`${name} must hold 32 bytes (64 hex characters or 44 base64 characters)`);
  return key;
}

export class KvmCipher {
  readonly #key: Buffer;
  readonly #previous: readonly Buffer[];

  constructor(key: Buffer, previous: readonly Buffer[] = []) {
    if (key.length !== 32) throw new Error(`${KVM_KEY_ENV} must hold 32 bytes (64 hex characters or 44 base64 characters)`);
    this.#key = key;
    this.#previous = previous;
  }

  /**
   * The cipher for TOLLGATE_KVM_KEY (and TOLLGATE_KVM_PREVIOUS_KEYS, comma-separated, read only), or null when it is
   * unset. @throws Error when either is set but malformed, or earlier keys are given without a current one.
   */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): KvmCipher | null {
    const raw = env[KVM_KEY_ENV]?.trim();
    const previous = commaList(env[KVM_PREVIOUS_KEYS_ENV]);
    if (!raw) {
      if (previous.length > 0) throw new Error(`${KVM_PREVIOUS_KEYS_ENV} is set without ${KVM_KEY_ENV}: earlier keys are read with a current one to write`);
      return null;
    }
    return new KvmCipher(parseKey(raw, KVM_KEY_ENV), previous.map((k, i) => parseKey(k, `${KVM_PREVIOUS_KEYS_ENV}[${i}]`)));
  }

  /** `aes256gcm:<iv>:<tag>:<ciphertext>`, base64 parts, under the current key; a fresh IV every time. */
  encrypt(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `${PREFIX}${iv.toString('base64')}:${cipher.getAuthTag().toString('base64')}:${data.toString('base64')}`;
  }

  /** Whether `stored` was encrypted under one of these keys. */
  canDecrypt(stored: string): boolean {
    return this.open(stored) !== undefined;
  }

  /** @throws Error when the value was not encrypted under any of these keys (or was tampered with). */
  decrypt(stored: string): string {
    const opened = this.open(stored);
    if (opened === undefined) throw new Error('not a value encrypted under these keys');
    return opened.plain;
  }

  /**
   * The plain text of `stored`, and whether it was under an earlier key (`stale`: what a re-encryption rewrites), or
   * undefined when under none of these keys.
   */
  open(stored: string): { plain: string; stale: boolean } | undefined {
    const plain = attempt(stored, this.#key);
    if (plain !== undefined) return { plain, stale: false };
    for (const key of this.#previous) {
      const old = attempt(stored, key);
      if (old !== undefined) return { plain: old, stale: true };
    }
    return undefined;
  }
}

/** The plain text of `stored` under `key`, or undefined (another key, tampered with, or not an encrypted value). */
function attempt(stored: string, key: Buffer): string | undefined {
  const [iv, tag, data] = stored.startsWith(PREFIX) ? stored.slice(PREFIX.length).split(':') : [];
  if (data === undefined) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}
