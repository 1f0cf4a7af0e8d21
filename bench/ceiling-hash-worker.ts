// The ceiling's password check, in a worker thread (piscina), doing what Latchkey's worker
// does: a SHA-256 pre-hash, then bcryptjs at the configured cost.
import { createHash } from 'node:crypto';
import bcrypt from 'bcryptjs';

const prehash = (password: string) => createHash('sha256').update(password, 'utf8').digest('hex');

export default async function run(task: { op: 'hash'; password: string; cost: number } | { op: 'verify'; password: string; hash: string }) {
  if (task.op === 'hash') return bcrypt.hash(prehash(task.password), task.cost);
  return bcrypt.compare(prehash(task.password), task.hash);
}
