/**
 * Single-thread bcrypt rate, the reference for the logins target: forked by bench/run.ts,
 * verifies one password for SECONDS seconds on this one thread exactly as Latchkey's hash
 * worker does (SHA-256 pre-hash, bcryptjs compare at BCRYPT_COST), and sends hashes/s back.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import bcrypt from 'bcryptjs';

const cost = Number(process.env['BCRYPT_COST'] ?? '10');
const seconds = Number(process.env['SECONDS_TO_RUN'] ?? '3');
const prehash = (password: string) => createHash('sha256').update(password, 'utf8').digest('hex');

process.on('disconnect', () => process.exit(3));
const hash = await bcrypt.hash(prehash('bench passphrase 42'), cost);
// One untimed round so the JIT has seen the code.
await bcrypt.compare(prehash('bench passphrase 42'), hash);
const started = performance.now();
let count = 0;
while (performance.now() - started < seconds * 1000) {
  if (!(await bcrypt.compare(prehash('bench passphrase 42'), hash))) throw new Error('bcrypt compare failed');
  count++;
}
const elapsed = (performance.now() - started) / 1000;
process.send?.({ hashesPerSecond: count / elapsed, count, seconds: elapsed }, () => process.exit(0));
