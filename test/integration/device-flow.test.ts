import * as oidc from 'openid-client';
import { beforeAll, expect, it } from 'vitest';
import { providerForm, signInAndAllow, UserAgent } from '../helpers/browserless.js';
import { discover, makeClient, makeUser, PASSWORD } from '../helpers/rp.js';
import { describeOnBackends } from '../helpers/fixture.js';
import { OPAQUE_TOKEN } from '../helpers/shapes.js';

const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';

describeOnBackends('device authorization grant, RFC 8628 (%s)', (fx) => {
  let config: oidc.Configuration;
  beforeAll(async () => {
    const made = await makeClient(fx.server.latchkey, { name: 'Living-room TV', isPublic: true, redirectUris: [], grantTypes: [DEVICE_CODE, 'refresh_token'] });
    config = await discover(fx.server.issuer, made.client.clientId, null);
  });

  it('advertises the device endpoint', () => {
    expect(config.serverMetadata().device_authorization_endpoint).toBe(`${fx.server.issuer}/device/auth`);
    expect(config.serverMetadata().grant_types_supported).toContain(DEVICE_CODE);
  });

  /** What a person does in a browser: enter the code, confirm, sign in, allow. */
  async function approveInBrowser(userCode: string, username: string, { enter = userCode } = {}) {
    const agent = new UserAgent();
    const start = await agent.fetch(`${fx.server.issuer}/device`);
    expect(start.status).toBe(200);
    const page = await start.text();
    expect(page).toContain('Enter the code shown on your device');
    const input = providerForm(page, 'op.deviceInputForm');
    const submitted = await agent.postForm(new URL(input.action, fx.server.url), { ...input.fields, user_code: enter });
    const confirmPage = await submitted.text();
    if (!confirmPage.includes('op.deviceConfirmForm')) return { agent, page: confirmPage, status: submitted.status };
    expect(confirmPage).toContain('Living-room TV');
    const confirm = providerForm(confirmPage, 'op.deviceConfirmForm');
    const confirmed = await agent.postForm(new URL(confirm.action, fx.server.url), confirm.fields);
    const response = await signInAndAllow(agent, new URL(confirmed.headers.get('location')!, fx.server.url), username, PASSWORD);
    return { agent, page: await response.text(), status: response.status };
  }

  it('lets a person approve a device in a browser while the device polls', async () => {
    const user = await makeUser(fx.server.latchkey);
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid profile offline_access' });
    expect(device.user_code).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);
    expect(device.verification_uri).toBe(`${fx.server.issuer}/device`);
    const polling = oidc.pollDeviceAuthorizationGrant(config, device);
    const { page } = await approveInBrowser(device.user_code, user.username);
    expect(page).toContain('Device connected');
    const tokens = await polling;
    expect(tokens.claims()?.sub).toBe(String(user.id));
    expect((await oidc.fetchUserInfo(config, tokens.access_token, String(user.id))).preferred_username).toBe(user.username);
    expect(tokens.refresh_token).toMatch(OPAQUE_TOKEN);
  });

  it('refuses a wrong code with a message and gives no tokens', async () => {
    const user = await makeUser(fx.server.latchkey);
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    const { page } = await approveInBrowser(device.user_code, user.username, { enter: 'BBBB-BBBB' });
    expect(page).toContain('That code is not valid');
    // The device is still waiting: one poll answers authorization_pending.
    const response = await fetch(`${fx.server.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: DEVICE_CODE, device_code: device.device_code, client_id: config.clientMetadata().client_id }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe('authorization_pending');
  });
});
