/** An error a JSON API answers with: `{"error": ..., "error_description": ...}` and a status. */
export class ApiError extends Error {
  readonly status: number;
  readonly error: string;
  constructor(status: number, error: string, description: string) {
    super(description);
    this.name = 'ApiError';
    this.status = status;
    this.error = error;
  }

  toJSON(): { error: string; error_description: string } {
    return { error: this.error, error_description: this.message };
  }
}
