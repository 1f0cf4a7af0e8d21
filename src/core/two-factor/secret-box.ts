import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { findEncryptionKey } from '../../storage/encryption-keys.js';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Seals small secrets (TOTP secrets) with AES-256-GCM before they are stored. The key is
 * derived (HKDF-SHA256) from a random key of its own in the `encryption_keys` table, and each
 * value is bound to a context (the user id) as additional data, so a sealed value copied onto
 * another row does not open.
 *
 * The key lives in the same database: this protects against leaks of the sealed rows alone
 * (an export of one table, a query log, a partial backup), not against someone holding the
 * whole database, who also holds the key.
 */
export interface SecretBox {
  seal(plaintext: string, context: string): string;
  /** The plaintext, or undefined when the value was tampered with or sealed for another context. */
  open(sealed: string, context: string): string | undefined;
}

export function createSecretBox(rootKey: Buffer, purpose: string): SecretBox {
  const key = Buffer.from(hkdfSync('sha256', rootKey, Buffer.alloc(0), `latchkey:${purpose}:${VERSION}`, 32));
  const b64 = (buffer: Buffer) => buffer.toString('base64url');

  return {
    seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(context));
      const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return [VERSION, b64(iv), b64(data), b64(cipher.getAuthTag())].join('.');
    },

    open(sealed, context) {
      const [version, iv, data, tag] = sealed.split('.');
      if (version !== VERSION || iv === undefined || data === undefined || tag === undefined) return undefined;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
        decipher.setAAD(Buffer.from(context));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
      } catch {
        return undefined;
      }
    },
  };
}

/** The box for one purpose, keyed from its row in `encryption_keys` (made by a migration). */
export async function loadSecretBox(knex: Knex, purpose: string): Promise<SecretBox> {
  const secret = await findEncryptionKey(knex, purpose);
  if (secret === undefined) throw new Error(`the ${purpose} encryption key is missing from encryption_keys`);
  return createSecretBox(Buffer.from(secret, 'base64url'), purpose);
}
