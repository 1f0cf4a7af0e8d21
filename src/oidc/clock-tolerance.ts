/**
 * Seconds of clock skew the provider forgives (its `clockTolerance`: the library's default,
 * stated here because storage depends on it). The library treats a token as valid until
 * `exp + clockTolerance` and, for a device code or a refresh token, answers with the error
 * its spec names (RFC 8628 `expired_token`) only while it can still find the expired row; so
 * our adapter keeps every row that long too, as the library's own memory adapter does.
 */
export const CLOCK_TOLERANCE_SECONDS = 15;
