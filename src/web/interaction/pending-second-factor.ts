import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

/** Where the password step leaves its result in the interaction (stored server-side with it). */
const KEY = 'latchkeyPendingSecondFactor';

/** How long after the password the code may come; then the password is asked again. */
export const PENDING_SECOND_FACTOR_MS = 10 * 60 * 1000;

/**
 * Remembers, in the interaction itself, that this account gave the right password and still
 * owes a code. Kept as the interaction's `result`, so it lives and dies with the interaction
 * (bound to the browser by its cookie) and is never sent to the browser. The result holds no
 * `login`: should the browser resume the authorization now, the provider simply asks for a
 * login again.
 */
export async function rememberPendingSecondFactor(
  provider: Provider,
  req: IncomingMessage,
  res: ServerResponse,
  accountId: string,
  now = Date.now(),
): Promise<void> {
  await provider.interactionResult(req, res, { [KEY]: { accountId, at: now } }, { mergeWithLastSubmission: false });
}

/** The account that passed the password step of this interaction, while its code may still come. */
export function pendingSecondFactor(details: Details, now = Date.now()): string | undefined {
  const pending = (details.result as Record<string, unknown> | undefined)?.[KEY] as { accountId?: unknown; at?: unknown } | undefined;
  if (typeof pending?.accountId !== 'string' || typeof pending.at !== 'number') return undefined;
  return now - pending.at < PENDING_SECOND_FACTOR_MS ? pending.accountId : undefined;
}

