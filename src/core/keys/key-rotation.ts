import { actorEntry, type AuditActor, type AuditLog } from '../audit/audit-log.js';
import { RETIRED_KEY_RETENTION_MS } from '../tokens/lifetimes.js';
import type { KeyStore } from './key-store.js';

/**
 * Rotates the signing keys (the previous ones stay published until every token they signed
 * has expired) and audits who did it: the one way the admin page and `keys rotate` both take.
 * Processes pick the new keys up on their next key refresh.
 */
export async function rotateSigningKeys(keyStore: KeyStore, audit: AuditLog, by: AuditActor): Promise<{ added: string[]; retired: string[] }> {
  const { added, retired } = await keyStore.rotate(RETIRED_KEY_RETENTION_MS);
  await audit.record('keys.rotated', { ...actorEntry(by), details: { added, retired } });
  return { added, retired };
}
