import Router from '@koa/router';
import type { Knex } from 'knex';
import { databaseAnswers } from '../../storage/knex.js';
import { pendingMigrations } from '../../storage/migrate.js';
import { SIGNING_ALGORITHMS, type KeyMaterial } from '../../core/keys/key-store.js';

/**
 * /health (database answers), /health/live (the process serves requests) and /health/ready
 * (database answers, schema current, signing keys loaded): what load balancers and
 * orchestrators poll.
 */
export function createHealthRouter({ knex, keys }: { knex: Knex; keys: () => KeyMaterial }): Router {
  const router = new Router();
  const noStore = { 'Cache-Control': 'no-store' };

  router.get('/health', async (ctx) => {
    const ok = await databaseAnswers(knex);
    ctx.set(noStore);
    ctx.status = ok ? 200 : 503;
    ctx.body = ok ? { status: 'ok' } : { status: 'unavailable', error: 'database_unreachable' };
  });

  router.get('/health/live', (ctx) => {
    ctx.set(noStore);
    ctx.body = { status: 'ok' };
  });

  router.get('/health/ready', async (ctx) => {
    const database = await databaseAnswers(knex);
    const pending = database ? await pendingMigrations(knex).catch(() => ['unknown']) : ['unknown'];
    const loaded = keys().jwks.keys.filter((k) => !k.key_ops).map((k) => k.alg);
    const keysOk = SIGNING_ALGORITHMS.every((alg) => loaded.includes(alg));
    const ready = database && pending.length === 0 && keysOk;
    ctx.set(noStore);
    ctx.status = ready ? 200 : 503;
    ctx.body = {
      status: ready ? 'ok' : 'unavailable',
      checks: { database: database ? 'ok' : 'unreachable', migrations: pending.length === 0 ? 'ok' : 'pending', keys: keysOk ? 'ok' : 'missing' },
    };
  });

  return router;
}
