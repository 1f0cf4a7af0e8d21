import { z } from 'zod';
import { MUST_BE_STRING, REQUIRED, requiredOr } from './schemas.js';

const OTP = 'The current TOTP code (or a recovery code); required for accounts with two-factor authentication.';

/**
 * A credential as simplejwt's serializer reads it: absent or blank is a 400 naming the field
 * (DRF's words), anything else a string whose check is the same 401 for every wrong sign-in.
 * The shape of a request tells nothing about the accounts.
 */
const credential = (description: string) =>
  z.string({ error: requiredOr('Not a valid string.') }).min(1, { error: 'This field may not be blank.' }).meta({ description });
/** /users/login/ (DOT's password grant behind it) never answered a field list: anything but a string counts as absent. */
const loginCredential = (description: string) => z.string().catch(undefined as unknown as string).meta({ description });
const optionalCredential = (description: string) => z.string().optional().catch(undefined).meta({ description });

export const TokenObtainSchema = z.object({
  username: credential('The username (or the email address).'),
  password: credential('The password.').meta({ writeOnly: true }),
  otp: optionalCredential(OTP),
});

export const TokenPairSchema = z
  .object({
    access: z.string().meta({ description: 'An access JWT (token_type access), for `Authorization: Bearer`.' }),
    refresh: z.string().meta({ description: 'A refresh JWT (single use unless API_ROTATE_REFRESH_TOKENS is off).' }),
  })
  .meta({ id: 'TokenPair' });

export const TokenRefreshAnswerSchema = z
  .object({
    access: z.string().meta({ description: 'A new access JWT.' }),
    refresh: z.string().optional().meta({ description: 'The next refresh JWT (single use); absent when API_ROTATE_REFRESH_TOKENS is off, where the presented one stays valid until it expires.' }),
  })
  .meta({ id: 'TokenRefreshAnswer' });

const requiredToken = () => z.string({ error: requiredOr('Not a valid string.') }).min(1, { error: REQUIRED });

export const TokenRefreshSchema = z.object({ refresh: requiredToken() });
export const TokenVerifySchema = z.object({ token: requiredToken() });

export const LegacyRegisterSchema = z.object({
  username: z.string({ error: MUST_BE_STRING }).optional(),
  email: z.string({ error: MUST_BE_STRING }).optional().meta({ description: 'Optional here (unlike POST /api/users/).' }),
  password: z.string({ error: MUST_BE_STRING }).optional().meta({ writeOnly: true }),
  confirm_password: z.string({ error: MUST_BE_STRING }).optional().meta({ writeOnly: true, description: 'Must equal password.' }),
  is_active: z
    .union([z.boolean(), z.string()], { error: 'Must be true or false.' })
    .optional()
    .meta({ description: 'Honoured for staff callers only (true, "true", "1" or "on"); ignored otherwise.' }),
});

export const LegacyLoginSchema = z.object({
  username: optionalCredential('The username; or send `email`.'),
  email: optionalCredential('The email address, instead of `username`.'),
  password: loginCredential('The password.').meta({ writeOnly: true }),
  otp: optionalCredential(OTP),
  scope: optionalCredential('Space-separated scopes, of those the first-party client may ask for (default: all of them).'),
});

/** RFC 6749 5.1, from the first-party client. */
export const OAuthTokensSchema = z
  .object({
    access_token: z.string(),
    refresh_token: z.string().optional(),
    token_type: z.string().meta({ description: 'Bearer' }),
    expires_in: z.int(),
    scope: z.string(),
  })
  .meta({ id: 'OAuthTokens' });
