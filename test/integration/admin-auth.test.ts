import { expect, it } from 'vitest';
import { adminLogin } from '../helpers/admin.js';
import { UserAgent } from '../helpers/browserless.js';
import { makeUser, PASSWORD } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';

describeOnBackends('admin sign-in (%s)', (fx) => {
  it('sends staff through the login page and back to the page they asked for', async () => {
    const staff = await makeUser(fx.server.latchkey, { isStaff: true });
    const agent = new UserAgent();
    const { response, url, html } = await adminLogin(fx.server.url, agent, staff.username, PASSWORD, '/admin/?from=deep-link');
    expect(url.pathname + url.search).toBe('/admin/?from=deep-link');
    expect(response.status).toBe(200);
    expect(html).toContain(staff.username);
    expect(html).not.toContain('name="password"');
    // The session persists: the next page needs no login.
    expect((await agent.fetch(`${fx.server.url}/admin/`)).status).toBe(200);
  });

  it('answers 403 to a signed-in person who is not staff', async () => {
    const plain = await makeUser(fx.server.latchkey);
    const { response, html } = await adminLogin(fx.server.url, new UserAgent(), plain.username, PASSWORD);
    expect(response.status).toBe(403);
    expect(html).toContain('not a staff member');
  });

  it('sends anonymous visitors to the login page and refuses a forged callback', async () => {
    const agent = new UserAgent();
    const first = await agent.fetch(`${fx.server.url}/admin/`);
    expect(first.status).toBe(302);
    expect(first.headers.get('location')).toContain('/o/auth?');
    // A callback with a state this browser never sent starts a fresh login instead.
    const forged = await new UserAgent().fetch(`${fx.server.url}/admin/callback?state=forged`);
    expect(forged.status).toBe(302);
    expect(forged.headers.get('location')).toContain('/o/auth?');
  });

  it('keeps DOT paths: /o/applications/ and /o/applications/register/ lead to the admin pages', async () => {
    const list = await fetch(`${fx.server.url}/o/applications/`, { redirect: 'manual' });
    expect(list.headers.get('location')).toBe('/admin/applications/');
    const register = await fetch(`${fx.server.url}/o/applications/register/`, { redirect: 'manual' });
    expect(register.headers.get('location')).toBe('/admin/applications/new');
  });
});
