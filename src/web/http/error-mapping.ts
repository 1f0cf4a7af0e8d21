import { DomainError, type ErrorCode, type FieldProblems } from '../../core/errors.js';
import { ApiError } from '../../errors.js';

/**
 * What the REST API answers for each refusal of the services: the status and the `error`
 * it has always given (several codes share one, e.g. every `*_not_found` is `not_found`).
 * Typed by every code: a new code does not compile until it has its answer here.
 */
export const REST_ERRORS = {
  invalid_input: { status: 400, error: 'invalid_request' },
  too_many_attempts: { status: 429, error: 'too_many_requests' },
  too_many_email_changes: { status: 429, error: 'too_many_requests' },
  last_superuser: { status: 409, error: 'conflict' },
  user_not_found: { status: 404, error: 'not_found' },
  client_not_found: { status: 404, error: 'not_found' },
  resource_not_found: { status: 404, error: 'not_found' },
  group_not_found: { status: 404, error: 'not_found' },
  member_not_found: { status: 404, error: 'not_found' },
  app_not_found: { status: 404, error: 'not_found' },
  session_not_found: { status: 404, error: 'not_found' },
  username_taken: { status: 409, error: 'conflict' },
  username_lookalike: { status: 409, error: 'conflict' },
  email_taken: { status: 409, error: 'conflict' },
  resource_identifier_taken: { status: 409, error: 'conflict' },
  group_name_taken: { status: 409, error: 'conflict' },
  enrollment_changed: { status: 409, error: 'conflict' },
  fields_forbidden: { status: 403, error: 'permission_denied' },
  superuser_only: { status: 403, error: 'permission_denied' },
  built_in_client: { status: 403, error: 'permission_denied' },
  built_in_resource: { status: 403, error: 'permission_denied' },
  two_factor_reset_staff_only: { status: 403, error: 'permission_denied' },
  two_factor_reset_own: { status: 403, error: 'permission_denied' },
  two_factor_reset_superuser: { status: 403, error: 'permission_denied' },
  already_enabled: { status: 409, error: 'already_enabled' },
  already_confirmed: { status: 409, error: 'already_enabled' },
  not_enabled: { status: 409, error: 'not_enabled' },
  no_enrollment: { status: 409, error: 'no_enrollment' },
  invalid_client_metadata: { status: 400, error: 'invalid_client_metadata' },
  invalid_redirect_uri: { status: 400, error: 'invalid_redirect_uri' },
  public_client_no_secret: { status: 400, error: 'invalid_request' },
  private_key_jwt_no_secret: { status: 400, error: 'invalid_request' },
  token_not_valid: { status: 401, error: 'invalid_token' },
} as const satisfies Record<ErrorCode, { status: number; error: string }>;

/** The HTTP status of a refusal (pages answer with it too). */
export function statusOf(error: DomainError): number {
  return REST_ERRORS[error.code].status;
}

/** Field problems as the REST API lists them: the English messages, per field. */
export function fieldMessages(fields: FieldProblems): Record<string, string[]> {
  return Object.fromEntries(Object.entries(fields).map(([field, problems]) => [field, problems.map((p) => p.message)]));
}

/**
 * A refused API JWT as djangorestframework-simplejwt answers it: its own keys (`detail`,
 * `code`) next to ours, since the clients of /api/token/ were written against simplejwt.
 * simplejwt's `detail` is one sentence whatever the reason; ours says which.
 */
class SimpleJwtTokenError extends ApiError {
  constructor(description: string) {
    super(401, 'invalid_token', description, undefined, 'Token is invalid or expired');
  }

  override toJSON(): { error: string; error_description: string; code: string; [key: string]: unknown } {
    return { ...super.toJSON(), code: 'token_not_valid' };
  }
}

/** DRF's `detail` for a 404 (Http404), whatever was not found. */
export const DRF_NOT_FOUND = 'Not found.';

/** A refusal as the REST API answers it: status, `error`, `error_description` and `fields`. */
export function restError(error: DomainError): ApiError {
  if (error.code === 'token_not_valid') return new SimpleJwtTokenError(error.message);
  const { status, error: code } = REST_ERRORS[error.code];
  return new ApiError(status, code, error.message, error.fields ? fieldMessages(error.fields) : undefined, status === 404 ? DRF_NOT_FOUND : undefined);
}
