import { Secret, TOTP } from 'otpauth';
import { expect } from 'vitest';
import { callApi, type Answer } from './http.js';
import { PASSWORD } from './rp.js';

/**
 * TOTP codes as an authenticator app computes them (RFC 6238: SHA1, 6 digits, 30 s), with the
 * library, independently of Latchkey's own parameters: `steps` moves the clock by 30 s each.
 */
export function codeAt(secret: string, steps = 0): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });
}

/** Six digits that are no valid code right now (none of the steps the server may accept). */
export function wrongCode(secret: string): string {
  const valid = new Set([-2, -1, 0, 1, 2].map((steps) => codeAt(secret, steps)));
  return ['111111', '222222', '333333', '444444'].find((code) => !valid.has(code))!;
}

/** JSON (or none) to a path, with an optional bearer token. */
export async function callJson(baseUrl: string, method: string, path: string, body?: unknown, bearer?: string): Promise<Answer> {
  return callApi(baseUrl, method, path, { json: body, token: bearer });
}

/** An access JWT from /api/token/ (before two-factor is on: no code needed). */
export async function apiAccess(baseUrl: string, username: string, password = PASSWORD): Promise<string> {
  const answer = await callJson(baseUrl, 'POST', '/api/token/', { username, password });
  expect(answer.status, answer.text).toBe(200);
  return String(answer.json['access']);
}

export interface Enrolled {
  secret: string;
  recoveryCodes: string[];
  /** The code that confirmed the enrollment (its time step is used up). */
  confirmCode: string;
  /** The access JWT used to enroll (still valid for five minutes). */
  access: string;
}

/**
 * Turns two-factor authentication on over the REST API as an app would: enroll (with the
 * password), read the secret, confirm with the current code. That code's time step is then used up.
 */
export async function enrollOverRest(baseUrl: string, username: string, password = PASSWORD): Promise<Enrolled> {
  const access = await apiAccess(baseUrl, username, password);
  const enrolled = await callJson(baseUrl, 'POST', '/api/me/two-factor/enroll/', { password }, access);
  expect(enrolled.status, enrolled.text).toBe(200);
  const secret = String(enrolled.json['secret']);
  const confirmCode = codeAt(secret);
  const confirmed = await callJson(baseUrl, 'POST', '/api/me/two-factor/confirm/', { code: confirmCode }, access);
  expect(confirmed.status, confirmed.text).toBe(200);
  return { secret, recoveryCodes: confirmed.json['recovery_codes'] as string[], confirmCode, access };
}
