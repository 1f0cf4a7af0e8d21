/**
 * An error a JSON API answers with: `{"error": ..., "error_description": ...}` (and `fields`,
 * one message list per bad field, when there are some) and a status.
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
  constructor(status: number, error: string, description: string, fields?: Record<string, string[]>) {
    super(description);
    this.name = 'ApiError';
    this.status = status;
    this.error = error;
    this.fields = fields;
  }

  toJSON(): { error: string; error_description: string; fields?: Record<string, string[]> } {
    return { error: this.error, error_description: this.message, ...(this.fields ? { fields: this.fields } : {}) };
  }
}

/** A 400 for a request whose JSON fields have the wrong shape, one message list per field (as Django REST framework answers). */
export function requestFields(fields: Record<string, string[]>): ApiError {
  return new ApiError(400, 'invalid_request', `Invalid ${Object.keys(fields).join(', ')}.`, fields);
}
