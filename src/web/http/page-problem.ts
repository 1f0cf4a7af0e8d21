import { DomainError, type ErrorCode, type FieldCode, type FieldProblem, type FieldProblems } from '../../core/errors.js';
import { ApiError } from '../../errors.js';
import { translator, type MessageKey, type MessageVars, type Translator } from '../../locales/i18n.js';
import { fieldMessages, statusOf } from './error-mapping.js';

/** How a refused action is shown on the form that sent it (account and admin pages). */
export interface Problem {
  status: number;
  message: string;
  fields: Record<string, string[]>;
  /** Seconds to wait, for a Retry-After header. */
  retryAfter?: number;
}

export const problem = (status: number, message: string, fields: Record<string, string[]> = {}): Problem => ({ status, message, fields });

type PageMessage = MessageKey | ((error: DomainError) => [MessageKey, MessageVars?]);

/**
 * The message a page shows for each refusal of the services, by code, with the error's
 * params filled in. Typed by every code: a new code does not compile until it has its
 * message here (and the catalogue has it in every language).
 */
export const PAGE_MESSAGES = {
  invalid_input: 'account.fields',
  too_many_attempts: (error) => lockedMessage(error.retryAfter ?? 0),
  too_many_email_changes: (error) => lockedMessage(error.retryAfter ?? 0),
  last_superuser: 'error.lastSuperuser',
  user_not_found: 'error.userNotFound',
  client_not_found: 'error.clientNotFound',
  resource_not_found: 'error.resourceNotFound',
  group_not_found: 'error.groupNotFound',
  member_not_found: 'error.memberNotFound',
  app_not_found: 'apps.notFound',
  session_not_found: 'sessions.notFound',
  username_taken: 'problem.usernameTaken',
  username_lookalike: 'problem.usernameLookalike',
  email_taken: 'problem.emailTaken',
  resource_identifier_taken: 'error.resourceIdentifierTaken',
  group_name_taken: 'error.groupNameTaken',
  enrollment_changed: 'error.enrollmentChanged',
  fields_forbidden: 'error.fieldsForbidden',
  superuser_only: 'error.superuserOnly',
  built_in_client: 'error.builtInClient',
  built_in_resource: 'error.builtInResource',
  two_factor_reset_staff_only: 'error.twoFactorResetStaffOnly',
  two_factor_reset_own: 'error.twoFactorResetOwn',
  two_factor_reset_superuser: 'error.twoFactorResetSuperuser',
  already_enabled: 'error.alreadyEnabled',
  already_confirmed: 'error.alreadyConfirmed',
  not_enabled: 'error.notEnabled',
  no_enrollment: 'error.noEnrollment',
  invalid_client_metadata: 'error.invalidClientMetadata',
  invalid_redirect_uri: 'error.invalidRedirectUri',
  public_client_no_secret: 'error.publicClientNoSecret',
  private_key_jwt_no_secret: 'error.privateKeyJwtNoSecret',
  token_not_valid: 'error.tokenNotValid',
} as const satisfies Record<ErrorCode, PageMessage>;

/** The lockout message of the login page (interaction/routes.ts `tooManyAttempts`). */
function lockedMessage(retryAfter: number): [MessageKey, MessageVars] {
  const minutes = Math.max(1, Math.ceil(retryAfter / 60));
  return [minutes === 1 ? 'login.locked.one' : 'login.locked.other', { minutes }];
}

/**
 * Field problems in the page's language, by code. `null`: only the REST API, the CLI and the
 * admin pages (which stay English) meet it, and the page shows the English message.
 */
export const FIELD_PAGE_MESSAGES = {
  required: 'problem.required',
  must_be_string: null,
  must_be_boolean: null,
  too_long: 'problem.nameLength',
  read_only_or_unknown: null,
  unknown_field: null,
  not_used_on_create: null,
  proof_not_needed: null,
  username_required: 'problem.usernameRequired',
  username_too_long: 'problem.usernameLength',
  username_characters: 'problem.usernameCharacters',
  username_taken: 'problem.usernameTaken',
  username_lookalike: 'problem.usernameLookalike',
  email_taken: 'problem.emailTaken',
  control_characters: 'problem.controlCharacters',
  email_too_long: 'problem.emailLength',
  email_invalid: 'problem.emailInvalid',
  password_too_short: 'problem.passwordShort',
  password_too_long: 'problem.passwordLong',
  password_too_common: 'problem.passwordCommon',
  password_same: 'problem.passwordSame',
  current_password_wrong: 'problem.currentPassword',
  password_wrong: 'problem.password',
  confirm_username: 'problem.confirmUsername',
  otp_needed: 'problem.otpNeeded',
  otp_wrong: 'problem.code',
  uri_control_characters: null,
  uri_not_absolute: null,
  uri_not_http: null,
  uri_fragment: null,
  uri_credentials: null,
  too_many_scopes: null,
  scope_invalid: null,
  scope_oidc: null,
  scope_duplicate: null,
  ttl_out_of_range: null,
  token_format: null,
  too_many_permissions: null,
  permission_invalid: null,
} as const satisfies Record<FieldCode, MessageKey | null>;

/** A refusal's message in the page's language. */
export function pageMessage(error: DomainError, i18n: Translator): string {
  const entry: PageMessage = PAGE_MESSAGES[error.code];
  const [key, vars] = typeof entry === 'function' ? entry(error) : [entry, error.params];
  return i18n.t(key, vars);
}

/** A field problem in the page's language (its English message where the pages never show it). */
export function fieldMessage(found: FieldProblem, i18n: Translator): string {
  const key: MessageKey | null = FIELD_PAGE_MESSAGES[found.code];
  return key ? i18n.t(key, found.params) : found.message;
}

function translatedFields(fields: FieldProblems | undefined, i18n: Translator): Record<string, string[]> {
  return Object.fromEntries(Object.entries(fields ?? {}).map(([field, problems]) => [field, problems.map((p) => fieldMessage(p, i18n))]));
}

/**
 * Maps the services' refusals to a status and the page's messages; anything else is not
 * ours to show (and is thrown again). `i18n`: the page's language. Without it (the admin
 * pages, English only) a page shows the services' own English words, as the REST API does,
 * under the pages' lead for field problems.
 */
export function problemOf(error: unknown, i18n?: Translator): Problem {
  if (error instanceof DomainError) {
    const status = statusOf(error);
    if (!i18n) {
      const message = error.code === 'invalid_input' ? translator('en').t('account.fields') : error.message;
      return problem(status, message, error.fields ? fieldMessages(error.fields) : {});
    }
    const shown = problem(status, pageMessage(error, i18n), translatedFields(error.fields, i18n));
    return error.retryAfter === undefined ? shown : { ...shown, retryAfter: error.retryAfter };
  }
  if (error instanceof ApiError && error.status < 500) return problem(error.status, error.message);
  throw error;
}
