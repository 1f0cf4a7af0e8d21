import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNT_CLIENT_ID, ADMIN_CLIENT_ID } from '../../src/oidc/first-party-pages.js';
import type { RunningLatchkey } from '../../src/start.js';
import { freshDatabase, type TestDatabase } from '../helpers/database.js';
import { BACKENDS } from '../helpers/env.js';
import { signIn } from '../helpers/fixture.js';
import { freePort } from '../helpers/process.js';
import { makeUser } from '../helpers/rp.js';
import { startOnDatabase } from '../helpers/server.js';

/**
 * One misconfigured process must not break the cluster: a second server started on the same
 * database without PUBLIC_URL (so with a URL of its own, http://localhost:<its port>) used
 * to rewrite the built-in pages clients' redirect URIs, and the first server's /admin/ and
 * /account/ failed with invalid_redirect_uri until it restarted. Start-up writes nothing that
 * depends on the process's own view; each process derives those URIs itself.
 */
describe.each(BACKENDS)('start-up leaves shared state alone (%s)', (backend) => {
  let db: TestDatabase;
  let first: RunningLatchkey | undefined;
  let second: RunningLatchkey | undefined;
  beforeAll(async () => {
    db = await freshDatabase(backend);
    const port = await freePort();
    // 127.0.0.1, not the localhost a server without PUBLIC_URL assumes: the two views differ.
    first = await startOnDatabase(db, { PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}` });
  });
  afterAll(async () => {
    await second?.close(1000);
    await first?.close(1000);
    await db?.drop();
  });

  it("keeps the first server's admin and account sign-in working after a server without PUBLIC_URL starts", async () => {
    const staff = await makeUser(first!.latchkey, { isStaff: true });
    await signIn(first!.url, staff);
    second = await startOnDatabase(db);
    expect(second.url).not.toBe(first!.url);
    for (const path of ['/admin/', '/account/']) {
      await signIn(first!.url, staff, { path });
      await signIn(second.url, staff, { path });
    }
    // The shared rows hold no process's URL.
    for (const clientId of [ADMIN_CLIENT_ID, ACCOUNT_CLIENT_ID]) {
      const row = await first!.latchkey.storage.clients.find(clientId);
      expect(row?.metadata, clientId).toMatchObject({ redirect_uris: [], post_logout_redirect_uris: [] });
    }
  });

  it("refuses a redirect to another server's pages callback", async () => {
    // Each server's pages client accepts only its own callback: the derived URIs are not a
    // union of every process's view.
    const answer = await fetch(
      `${first!.url}/o/auth?${new URLSearchParams({ client_id: ADMIN_CLIENT_ID, response_type: 'none', scope: 'openid', state: 'x', redirect_uri: `${second!.url}/admin/callback` })}`,
      { redirect: 'manual', headers: { accept: 'application/json' } },
    );
    expect(answer.status).toBe(400);
    expect(await answer.text()).toMatch(/redirect_uri/);
  });
});
