/**
 * The services' refusals, as stable codes: no HTTP here. Each edge maps a code to what it
 * shows: the REST API to a status, `error` and `error_description` (src/web/http/error-mapping.ts),
 * the pages to a message in their language, looked up by code (src/web/http/page-problem.ts),
 * the CLI to one line and a non-zero exit (src/cli/run.ts).
 *
 * The English messages here are the REST API's `error_description`s and `fields` lists, word
 * for word what it has always said: clients match on them. Messages may hold {placeholders},
 * filled from the error's params.
 *
 * The web edge keeps `ApiError` (src/errors.ts) for what only HTTP knows: unreadable or
 * oversized bodies, the JSON shape of a request, route-level 404s and permissions, token
 * challenges. The provider's own OAuth errors (oidc-provider's `errors.*`) stay as they are.
 */

export type Params = Readonly<Record<string, string | number>>;

/** Fills {placeholders} from params (once: a value holding braces stays as it is). */
export function fillMessage(template: string, params: Params = {}): string {
  return template.replace(/\{(\w+)\}/g, (placeholder, name: string) => (name in params ? String(params[name]) : placeholder));
}

/** What can be wrong with one field, and its English message. */
export const FIELD_MESSAGES = {
  required: 'This field is required.',
  must_be_string: 'Must be a string.',
  must_be_boolean: 'Must be true or false.',
  too_long: 'Must be at most {max} characters.',
  read_only_or_unknown: 'This field is read-only or unknown.',
  unknown_field: 'Unknown field.',
  not_used_on_create: 'Not used when creating a user.',
  proof_not_needed: 'Only needed to change your own email or password.',
  username_required: 'Username is required.',
  username_too_long: 'Username must be at most {max} characters.',
  username_characters: 'Username may contain only letters, digits and @ . + - _ characters.',
  username_taken: 'A user with that username already exists.',
  username_lookalike: 'A user with a username that looks the same already exists.',
  email_taken: 'A user with that email already exists.',
  control_characters: 'Must not contain control characters.',
  email_too_long: 'Email must be at most {max} characters.',
  email_invalid: 'Enter a valid email address.',
  password_too_short: 'Password must be at least {min} characters.',
  password_too_long: 'Password must be at most {max} characters.',
  password_too_common: 'This password is too common; choose one that is harder to guess.',
  password_same: 'The new password must differ from the current one.',
  current_password_wrong: 'The current password is not correct.',
  password_wrong: 'The password is not correct.',
  confirm_username: 'Type your username exactly as shown.',
  otp_needed: 'This account uses two-factor authentication: enter the current code of your authenticator app (or a recovery code).',
  otp_wrong: 'The code is not valid. Use the current code of your authenticator app.',
  uri_control_characters: 'Must not contain spaces or control characters.',
  uri_not_absolute: 'Must be an absolute URI, such as https://api.example.com/.',
  uri_not_http: 'Must be an http or https URI.',
  uri_fragment: 'Must not contain a fragment (#).',
  uri_credentials: 'Must not contain a user name or password.',
  too_many_scopes: 'At most {max} scopes.',
  scope_invalid: '"{scope}" is not a valid scope (printable characters other than space, " and \\, at most {max}).',
  scope_oidc: '"{scope}" is an OpenID Connect scope; choose another name.',
  scope_duplicate: '"{scope}" is listed twice.',
  ttl_out_of_range: 'Must be a whole number of seconds from {min} to {max}.',
  token_format: 'Must be "jwt" or "opaque".',
  too_many_permissions: 'At most {max} permissions.',
  permission_invalid: '"{permission}" is not a permission; write app_label.codename, as Django does.',
} as const;

export type FieldCode = keyof typeof FIELD_MESSAGES;
export const FIELD_CODES = Object.keys(FIELD_MESSAGES) as FieldCode[];

/** One problem with one field: a stable code, its English message, and the values in it. */
export interface FieldProblem {
  readonly code: FieldCode;
  readonly message: string;
  readonly params?: Params;
}

export function fieldProblem(code: FieldCode, params?: Params): FieldProblem {
  return { code, message: fillMessage(FIELD_MESSAGES[code], params), ...(params ? { params } : {}) };
}

/** Problems by field name (several per field may be). */
export type FieldProblems = Readonly<Record<string, readonly FieldProblem[]>>;

/** Every refusal of the services, and its English message. */
export const ERROR_MESSAGES = {
  invalid_input: 'Invalid {fields}.',
  too_many_attempts: 'Too many failed attempts; try again later.',
  too_many_email_changes: 'Too many email changes; try again later.',
  last_superuser: 'This is the last active superuser; make someone else a superuser first.',
  user_not_found: 'No such user.',
  client_not_found: 'No such client.',
  resource_not_found: 'No such resource.',
  group_not_found: 'No such group.',
  member_not_found: 'That user is not a member of this group.',
  app_not_found: 'No such connected application.',
  session_not_found: 'No such session.',
  username_taken: 'A user with that username already exists.',
  username_lookalike: 'A user with a username that looks the same already exists.',
  email_taken: 'A user with that email already exists.',
  resource_identifier_taken: 'A resource with that identifier already exists.',
  group_name_taken: 'A group with that name already exists.',
  enrollment_changed: 'The enrollment changed meanwhile; start again.',
  fields_forbidden: 'You may not set {fields}.',
  superuser_only: 'Only a superuser may change or delete a superuser.',
  built_in_client: 'Built-in clients are managed by Latchkey itself.',
  built_in_resource: 'The built-in Latchkey REST API resource cannot be changed or deleted.',
  two_factor_reset_staff_only: 'Only staff may reset two-factor authentication.',
  two_factor_reset_own: 'Turn off your own two-factor authentication in your account: it needs your password and a code.',
  two_factor_reset_superuser: 'Only a superuser may reset the two-factor authentication of a superuser.',
  already_enabled: 'Two-factor authentication is already enabled; disable it first to enroll another authenticator.',
  already_confirmed: 'Two-factor authentication is already enabled.',
  not_enabled: 'Two-factor authentication is not enabled for this account.',
  no_enrollment: 'Start an enrollment first (POST /api/me/two-factor/enroll/).',
  /** `detail` says what is wrong, in English (some of it from oidc-provider). */
  invalid_client_metadata: '{detail}',
  invalid_redirect_uri: '{detail}',
  public_client_no_secret: 'A public client has no secret to rotate.',
  private_key_jwt_no_secret: 'This client authenticates with private_key_jwt: it has no secret to rotate.',
  /** A REST API JWT (/api/token/) refused: bad signature or claims, expired, or its user changed; `detail` says which. */
  token_not_valid: '{detail}',
} as const;

export type ErrorCode = keyof typeof ERROR_MESSAGES;
export const ERROR_CODES = Object.keys(ERROR_MESSAGES) as ErrorCode[];

/**
 * A refusal of a service: a stable `code`, its English message, and what the edges need to
 * say more (per-field problems, seconds to wait). `expose`: the message is meant for the
 * caller, as with oidc-provider's errors.
 */
export class DomainError extends Error {
  readonly expose = true;
  readonly code: ErrorCode;
  readonly params: Params;
  readonly fields?: FieldProblems;
  readonly retryAfter?: number;

  constructor(code: ErrorCode, params: Params = {}, extra: { fields?: FieldProblems; retryAfter?: number } = {}) {
    super(fillMessage(ERROR_MESSAGES[code], params));
    this.name = 'DomainError';
    this.code = code;
    this.params = params;
    if (extra.fields) this.fields = extra.fields;
    if (extra.retryAfter !== undefined) this.retryAfter = extra.retryAfter;
  }
}

/** One or more fields are wrong: one problem list per field. */
export class InvalidInput extends DomainError {
  declare readonly fields: FieldProblems;
  constructor(fields: FieldProblems) {
    super('invalid_input', { fields: Object.keys(fields).join(', ') }, { fields });
    this.name = 'InvalidInput';
  }

  /** One field, one problem. */
  static of(field: string, code: FieldCode, params?: Params): InvalidInput {
    return new InvalidInput({ [field]: [fieldProblem(code, params)] });
  }
}

/** The password (or code, or mail) was tried too often: the throttle's lock, for `retryAfter` seconds. */
export class TooManyAttempts extends DomainError {
  declare readonly retryAfter: number;
  constructor(retryAfter: number, code: 'too_many_attempts' | 'too_many_email_changes' = 'too_many_attempts') {
    super(code, {}, { retryAfter });
    this.name = 'TooManyAttempts';
  }
}

/** Deleting the only active superuser would leave nobody able to manage superusers. */
export class LastSuperuser extends DomainError {
  constructor() {
    super('last_superuser');
    this.name = 'LastSuperuser';
  }
}

/** Collects field problems while a service checks its input; `throwIfAny` ends the check. */
export function fieldCollector() {
  const fields: Record<string, FieldProblem[]> = {};
  return {
    fields,
    /** A problem with a field: by code, or as a validator found it. */
    add(field: string, problem: FieldCode | FieldProblem, params?: Params): void {
      (fields[field] ??= []).push(typeof problem === 'string' ? fieldProblem(problem, params) : problem);
    },
    has: (field: string) => fields[field] !== undefined,
    throwIfAny(): void {
      if (Object.keys(fields).length) throw new InvalidInput(fields);
    },
  };
}
