/**
 * Authentication context class references (OIDC Core 2, `acr`): how strongly the person
 * proved who they are. A password alone, or a password and a second factor (TOTP or a
 * recovery code, amr `otp`).
 */
export const PASSWORD_ACR = 'urn:latchkey:acr:password';
export const MFA_ACR = 'urn:latchkey:acr:mfa';

/** Every acr Latchkey can deliver (advertised as `acr_values_supported`). */
export const ACR_VALUES: readonly string[] = [PASSWORD_ACR, MFA_ACR];

/**
 * The acr values the relying party accepts when it asked for the `acr` claim as essential
 * (claims parameter, OIDC Core 5.5.1.1); undefined when any acr will do. `acr_values` alone
 * is voluntary and never restricts.
 */
function essentialAcrs(promptDetails: unknown): unknown[] | undefined {
  const request = (promptDetails as { acr?: { essential?: unknown; value?: unknown; values?: unknown } } | undefined)?.acr;
  if (!request || request.essential !== true) return undefined;
  const accepted = Array.isArray(request.values) ? (request.values as unknown[]) : request.value !== undefined ? [request.value] : [];
  return accepted.length ? accepted : undefined;
}

/**
 * True when an essential acr was requested and none of the values it accepts is one Latchkey
 * can deliver to anybody. The provider would otherwise ask for a login again after every
 * login, forever; OIDC says to treat it as a failed authentication instead.
 */
export function essentialAcrUnattainable(promptDetails: unknown): boolean {
  const accepted = essentialAcrs(promptDetails);
  return accepted !== undefined && !accepted.some((value) => typeof value === 'string' && ACR_VALUES.includes(value));
}

/**
 * The acr a finished login gets: the strongest it achieved (mfa after a second factor) that
 * an essential request accepts. A login with both factors also proved the password, so a
 * request that accepts only the password acr gets that one (amr still says both). Undefined
 * when the login achieved nothing the request accepts: an essential mfa request and a user
 * without two-factor authentication; the request then fails as unmet.
 */
export function acrForLogin(promptDetails: unknown, { secondFactor }: { secondFactor: boolean }): string | undefined {
  const achieved = secondFactor ? [MFA_ACR, PASSWORD_ACR] : [PASSWORD_ACR];
  const accepted = essentialAcrs(promptDetails);
  return accepted === undefined ? achieved[0] : achieved.find((acr) => accepted.includes(acr));
}
