import { HOTP, Secret, TOTP } from 'otpauth';

/** The issuer authenticator apps show next to the account name. */
export const TOTP_ISSUER = 'Latchkey';

/**
 * RFC 6238 parameters every authenticator app understands: HMAC-SHA1, 6 digits, 30-second
 * steps. A code is accepted one step either side of now (clock drift, typing time).
 */
export const TOTP_PARAMETERS = { algorithm: 'SHA1', digits: 6, period: 30 } as const;
export const TOTP_WINDOW = 1;

/** 160 bits: the HMAC-SHA1 block-size recommendation of RFC 4226 section 4. */
const SECRET_BYTES = 20;

/** A new random secret, base32 (RFC 4648, no padding) as apps and otpauth:// URIs use it. */
export function newTotpSecret(): string {
  return new Secret({ size: SECRET_BYTES }).base32;
}

/** The otpauth:// key URI (the QR code's content): issuer "Latchkey", the username as label. */
export function totpKeyUri(secret: string, username: string): string {
  return new TOTP({ issuer: TOTP_ISSUER, label: username, secret: Secret.fromBase32(secret), ...TOTP_PARAMETERS }).toString();
}

/** The time step (RFC 6238 T) at a moment. */
export function totpStep(now: number): number {
  return TOTP.counter({ period: TOTP_PARAMETERS.period, timestamp: now });
}

/** Only six digits can be a code; anything else is not even compared. */
export const TOTP_CODE = /^\d{6}$/;

/**
 * The earliest time step within the window whose code is `code` and which is later than
 * `after` (the step of the last code accepted, so no code works twice); undefined if none.
 */
export function matchTotpStep(secret: string, code: string, { now, after }: { now: number; after: number | null }): number | undefined {
  if (!TOTP_CODE.test(code)) return undefined;
  const key = Secret.fromBase32(secret);
  const current = totpStep(now);
  for (let step = current - TOTP_WINDOW; step <= current + TOTP_WINDOW; step++) {
    if (after !== null && step <= after) continue;
    const delta = HOTP.validate({ token: code, secret: key, algorithm: TOTP_PARAMETERS.algorithm, digits: TOTP_PARAMETERS.digits, counter: step, window: 0 });
    if (delta === 0) return step;
  }
  return undefined;
}
