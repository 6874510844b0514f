// Encryption of key-value map values at rest: AES-256-GCM under the key in TOLLGATE_KVM_KEY (32 bytes, hex or base64).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export const KVM_KEY_ENV = 'TOLLGATE_KVM_KEY';
const PREFIX = 'aes256gcm:';

export class KvmCipher {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error(`${KVM_KEY_ENV} must hold 32 bytes (64 hex characters or 44 base64 characters)`);
    this.#key = key;
  }

  /** The cipher for TOLLGATE_KVM_KEY, or null when it is unset. @throws Error when it is set but malformed. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): KvmCipher | null {
    const raw = env[KVM_KEY_ENV]?.trim();
    if (!raw) return null;
    return new KvmCipher(/^[0-9a-fA-F]{64}$/.test(raw) ? Buffer.from(raw, 'hex') : Buffer.from(raw, 'base64'));
  }

  /** `aes256gcm:<iv>:<tag>:<ciphertext>`, base64 parts; a fresh IV every time. */
  encrypt(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `${PREFIX}${iv.toString('base64')}:${cipher.getAuthTag().toString('base64')}:${data.toString('base64')}`;
  }

  /** Whether `stored` was encrypted under this key. */
  canDecrypt(stored: string): boolean {
    try {
      this.decrypt(stored);
      return true;
    } catch {
      return false;
    }
  }

  /** @throws Error when the value was not encrypted under this key (or was tampered with). */
  decrypt(stored: string): string {
    const [iv, tag, data] = stored.startsWith(PREFIX) ? stored.slice(PREFIX.length).split(':') : [];
    if (data === undefined) throw new Error('not an encrypted KVM value');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]).toString('utf8');
  }
}
