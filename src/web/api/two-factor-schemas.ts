import { z } from 'zod';
import { requiredString, timestamp } from './schemas.js';

const password = () => requiredString().meta({ writeOnly: true, description: 'The current password (counts like a login attempt).' });
const code = () => requiredString().meta({ description: 'A code from the authenticator app (or, where said, a recovery code).' });

export const EnrollSchema = z.object({ password: password() });
export const ConfirmSchema = z.object({ code: code() });
export const ProofSchema = z.object({ password: password(), code: code() });

export const TwoFactorStatusSchema = z
  .object({
    enabled: z.boolean().meta({ description: 'Sign-in asks for a code after the password.' }),
    enabled_at: timestamp().nullable(),
    pending: z.boolean().meta({ description: 'An enrollment was started and not confirmed yet.' }),
    recovery_codes_remaining: z.int().min(0).meta({ description: 'Unused recovery codes.' }),
  })
  .meta({ id: 'TwoFactorStatus' });

export const TwoFactorEnrollmentSchema = z
  .object({
    secret: z.string().meta({ description: 'The TOTP secret, base32, for apps that cannot scan.' }),
    otpauth_uri: z.string().meta({ description: 'otpauth://totp/Latchkey:<username>?secret=…&issuer=Latchkey (SHA1, 6 digits, 30 s)' }),
    qr_svg: z.string().meta({ description: 'The otpauth URI as a QR code: an SVG document.' }),
  })
  .meta({ id: 'TwoFactorEnrollment' });

export const RecoveryCodesSchema = z
  .object({
    recovery_codes: z.array(z.string()).meta({ description: 'Ten single-use codes (xxxxx-xxxxx-xxxxx-xxxxx), shown in this response only and stored hashed.' }),
  })
  .meta({ id: 'RecoveryCodes' });
