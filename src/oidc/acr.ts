/**
 * Authentication context class references (OIDC Core 2, `acr`). Latchkey signs people in with
 * a password only, so one value says so; a second factor will add a second value.
 */
export const PASSWORD_ACR = 'urn:latchkey:acr:password';

/** Every acr Latchkey can deliver (advertised as `acr_values_supported`). */
export const ACR_VALUES: readonly string[] = [PASSWORD_ACR];

/**
 * True when the relying party asked for the `acr` claim as essential (claims parameter,
 * OIDC Core 5.5.1.1) and none of the values it accepts is one Latchkey can deliver. The
 * provider would otherwise ask for a login again after every login, forever; OIDC says to
 * treat it as a failed authentication instead. `acr_values` alone is voluntary and never
 * makes this true.
 */
export function essentialAcrUnattainable(promptDetails: unknown): boolean {
  const request = (promptDetails as { acr?: { essential?: unknown; value?: unknown; values?: unknown } } | undefined)?.acr;
  if (!request || request.essential !== true) return false;
  const accepted = Array.isArray(request.values) ? (request.values as unknown[]) : request.value !== undefined ? [request.value] : [];
  if (!accepted.length) return false;
  return !accepted.some((value) => typeof value === 'string' && ACR_VALUES.includes(value));
}
