import { randomBytes } from 'node:crypto';
import { HOTP, Secret } from 'otpauth';
import type Provider from 'oidc-provider';
import { describe, expect, it } from 'vitest';
import { hashRecoveryCode, newRecoveryCodes, normalizeRecoveryCode } from '../../src/core/two-factor/recovery-codes.js';
import { createSecretBox } from '../../src/core/two-factor/secret-box.js';
import { matchTotpStep, newTotpSecret, totpKeyUri, totpStep } from '../../src/core/two-factor/totp.js';
import { PENDING_SECOND_FACTOR_MS, pendingSecondFactor } from '../../src/web/interaction/pending-second-factor.js';

/** RFC 6238 appendix B: the SHA1 test secret ("12345678901234567890"). */
const RFC_SECRET = new Secret({ buffer: new TextEncoder().encode('12345678901234567890').buffer as ArrayBuffer }).base32;

/** The 6-digit code of a step, computed by HOTP directly (T is the HOTP counter). */
const codeOf = (secret: string, step: number) => HOTP.generate({ secret: Secret.fromBase32(secret), counter: step, digits: 6, algorithm: 'SHA1' });

describe('TOTP', () => {
  it('matches the RFC 6238 test vectors (SHA1, 30 s steps, last 6 digits)', () => {
    // Appendix B: T = 59 s -> 94287082, T = 1111111109 s -> 07081804 (8 digits; apps show 6).
    expect(matchTotpStep(RFC_SECRET, '287082', { now: 59_000, after: null })).toBe(1);
    expect(matchTotpStep(RFC_SECRET, '081804', { now: 1_111_111_109_000, after: null })).toBe(37_037_036);
  });

  it('accepts one step either side of now, and no further', () => {
    const secret = newTotpSecret();
    const now = Date.now();
    const step = totpStep(now);
    for (const delta of [-1, 0, 1]) expect(matchTotpStep(secret, codeOf(secret, step + delta), { now, after: null })).toBe(step + delta);
    for (const delta of [-3, -2, 2, 3]) {
      const code = codeOf(secret, step + delta);
      // (A code may repeat within the window by chance, one in a million: then it is a valid code.)
      const window = [-1, 0, 1].map((d) => codeOf(secret, step + d));
      if (!window.includes(code)) expect(matchTotpStep(secret, code, { now, after: null })).toBeUndefined();
    }
  });

  it('never accepts a step at or before the last one used', () => {
    const secret = newTotpSecret();
    const now = Date.now();
    const step = totpStep(now);
    expect(matchTotpStep(secret, codeOf(secret, step), { now, after: step })).toBeUndefined();
    expect(matchTotpStep(secret, codeOf(secret, step - 1), { now, after: step - 1 })).toBeUndefined();
    expect(matchTotpStep(secret, codeOf(secret, step + 1), { now, after: step })).toBe(step + 1);
  });

  it('compares only six digits', () => {
    const secret = newTotpSecret();
    const now = Date.now();
    const code = codeOf(secret, totpStep(now));
    for (const typed of [`${code}0`, code.slice(1), ` ${code}`, '', 'abcdef']) expect(matchTotpStep(secret, typed, { now, after: null })).toBeUndefined();
  });

  it('makes 160-bit secrets and an otpauth URI with issuer Latchkey and the username', () => {
    const secret = newTotpSecret();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(newTotpSecret()).not.toBe(secret);
    const uri = new URL(totpKeyUri(secret, 'ada lovelace'));
    expect(uri.protocol).toBe('otpauth:');
    expect(decodeURIComponent(uri.pathname)).toBe('/Latchkey:ada lovelace');
    expect(Object.fromEntries(uri.searchParams)).toEqual({ issuer: 'Latchkey', secret, algorithm: 'SHA1', digits: '6', period: '30' });
  });
});

describe('recovery codes', () => {
  it('are ten distinct codes in groups of five from an unambiguous alphabet', () => {
    const codes = newRecoveryCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[a-hjkmnp-z2-9]{5}(-[a-hjkmnp-z2-9]{5}){3}$/);
  });

  it('compare without case, spaces or dashes, and refuse anything else', () => {
    const [code] = newRecoveryCodes(1) as [string];
    const plain = code.replace(/-/g, '');
    expect(normalizeRecoveryCode(code)).toBe(plain);
    expect(normalizeRecoveryCode(` ${code.toUpperCase().replace(/-/g, ' ')} `)).toBe(plain);
    expect(normalizeRecoveryCode(plain.slice(1))).toBeUndefined();
    expect(normalizeRecoveryCode(`${plain}a`)).toBeUndefined();
    expect(normalizeRecoveryCode('123456')).toBeUndefined();
    expect(normalizeRecoveryCode(plain.replace(/./, '0'))).toBeUndefined();
    expect(hashRecoveryCode(plain)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashRecoveryCode(plain)).not.toContain(plain);
  });
});

describe('secret box', () => {
  const box = createSecretBox(randomBytes(32), 'two_factor');

  it('opens what it sealed, for the same context only', () => {
    const sealed = box.seal('JBSWY3DPEHPK3PXP', 'user:1');
    expect(sealed).not.toContain('JBSWY3DPEHPK3PXP');
    expect(box.seal('JBSWY3DPEHPK3PXP', 'user:1')).not.toBe(sealed);
    expect(box.open(sealed, 'user:1')).toBe('JBSWY3DPEHPK3PXP');
    expect(box.open(sealed, 'user:2')).toBeUndefined();
  });

  it('refuses tampered values and other keys', () => {
    const sealed = box.seal('JBSWY3DPEHPK3PXP', 'user:1');
    const [version, iv, data, tag] = sealed.split('.') as [string, string, string, string];
    const flipped = Buffer.from(data, 'base64url');
    flipped[0] = flipped[0]! ^ 1;
    expect(box.open([version, iv, flipped.toString('base64url'), tag].join('.'), 'user:1')).toBeUndefined();
    expect(box.open(['v0', iv, data, tag].join('.'), 'user:1')).toBeUndefined();
    expect(box.open('garbage', 'user:1')).toBeUndefined();
    expect(createSecretBox(randomBytes(32), 'two_factor').open(sealed, 'user:1')).toBeUndefined();
  });
});

describe('the pending second login step', () => {
  type Details = Awaited<ReturnType<Provider['interactionDetails']>>;
  const details = (result: unknown) => ({ result }) as unknown as Details;

  it('holds the account for ten minutes after the password, then no longer', () => {
    const at = 1_000_000;
    const pending = details({ latchkeyPendingSecondFactor: { accountId: '7', at } });
    expect(pendingSecondFactor(pending, at)).toBe('7');
    expect(pendingSecondFactor(pending, at + PENDING_SECOND_FACTOR_MS - 1)).toBe('7');
    expect(pendingSecondFactor(pending, at + PENDING_SECOND_FACTOR_MS)).toBeUndefined();
    expect(pendingSecondFactor(details(undefined), at)).toBeUndefined();
    expect(pendingSecondFactor(details({ login: { accountId: '7' } }), at)).toBeUndefined();
    expect(pendingSecondFactor(details({ latchkeyPendingSecondFactor: { accountId: 7, at } }), at)).toBeUndefined();
  });
});
