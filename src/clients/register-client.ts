import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import { ApiError } from '../errors.js';
import type { ClientRecord, ClientRepository, NewClient } from '../repositories/clients.js';

/** Grant types a client may be registered with (`password` is legacy, for first-party apps). */
export const SUPPORTED_GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials', 'password'] as const;

/**
 * Registers a client after the provider itself has validated the metadata (redirect URI
 * rules, grant/response type consistency), so nothing stored can fail to load later.
 * @returns the client and its secret, which is not stored and cannot be shown again.
 */
export async function registerClient(
  deps: { clients: ClientRepository; provider: Provider },
  input: NewClient,
): Promise<{ client: ClientRecord; clientSecret: string | null }> {
  const name = input.name.trim();
  if (!name) throw new ApiError(400, 'invalid_client_metadata', 'A client name is required.');
  for (const grant of input.grantTypes ?? []) {
    if (!(SUPPORTED_GRANT_TYPES as readonly string[]).includes(grant)) {
      throw new ApiError(400, 'invalid_client_metadata', `Unsupported grant type "${grant}"; use one of ${SUPPORTED_GRANT_TYPES.join(', ')}.`);
    }
  }
  if (input.grantTypes?.includes('refresh_token') && !input.grantTypes.some((g) => g === 'authorization_code' || g === 'password')) {
    throw new ApiError(400, 'invalid_client_metadata', 'refresh_token needs authorization_code: nothing else issues refresh tokens.');
  }
  if (input.isPublic && input.grantTypes?.includes('client_credentials')) {
    throw new ApiError(400, 'invalid_client_metadata', 'A public client cannot use client_credentials: it has no secret.');
  }
  const candidate = deps.clients.draft({ ...input, name });
  try {
    await deps.provider.Client.validate({
      ...candidate.metadata,
      client_id: 'validation',
      ...(input.isPublic ? {} : { client_secret: 'validation-secret' }),
    } as Parameters<Provider['Client']['validate']>[0]);
  } catch (error) {
    if (error instanceof errors.InvalidClientMetadata || error instanceof errors.InvalidRedirectUri) {
      throw new ApiError(400, error.message, error.error_description ?? error.message);
    }
    throw error;
  }
  return deps.clients.insertDraft(candidate);
}
