/** Keys of the error body a field's message list never replaces. */
const ERROR_KEYS = new Set(['error', 'error_description', 'detail', 'fields', 'code', 'messages']);

/**
 * An error a JSON API answers with: `{"error": ..., "error_description": ...}` (and `fields`,
 * one message list per bad field, when there are some) and a status.
 *
 * The clients of the Django services Latchkey replaces read Django REST framework's keys, so
 * every body also carries them: `detail` (DRF's message, by default the description) and,
 * for a 400 with field problems, each field's list at the top level as DRF answers
 * (`{"username": ["This field is required."]}`, `non_field_errors`).
 *
 * Only the web edge throws these, for what is HTTP's own business: bodies that cannot be read
 * or are too large, the JSON shape of a request (`requestFields`), route-level 404s and
 * permissions, token challenges. The services throw domain errors with stable codes
 * (src/core/errors.ts), which src/web/http/error-mapping.ts turns into the same kind of answer.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly error: string;
  readonly fields: Record<string, string[]> | undefined;
  /** What DRF says in `detail` where its words differ from ours (e.g. "Not found."). */
  readonly detail: string;
  constructor(status: number, error: string, description: string, fields?: Record<string, string[]>, detail?: string) {
    super(description);
    this.detail = detail ?? description;
    this.name = 'ApiError';
    this.status = status;
    this.error = error;
    this.fields = fields;
  }

  toJSON(): { error: string; error_description: string; detail?: string; fields?: Record<string, string[]>; [field: string]: unknown } {
    const drfFields = Object.fromEntries(Object.entries(this.fields ?? {}).filter(([name]) => !ERROR_KEYS.has(name)));
    return {
      ...drfFields,
      error: this.error,
      error_description: this.message,
      // DRF sends either field lists or `detail`, never both.
      ...(this.fields ? { fields: this.fields } : { detail: this.detail }),
    };
  }
}

/** A 400 for a request whose JSON fields have the wrong shape, one message list per field (as Django REST framework answers). */
export function requestFields(fields: Record<string, string[]>): ApiError {
  return new ApiError(400, 'invalid_request', `Invalid ${Object.keys(fields).join(', ')}.`, fields);
}
