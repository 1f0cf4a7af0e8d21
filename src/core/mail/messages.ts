import type { MailMessage } from './mailer.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Everything that goes into the HTML part is escaped: usernames are user input. */
function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** The same words as plain text and as a small HTML page with one button-like link. */
function compose(to: string, subject: string, paragraphs: { before: string[]; action: string; link: string; after: string[] }): MailMessage {
  const { before, action, link, after } = paragraphs;
  const text = [...before, link, ...after].join('\n\n') + '\n';
  const p = (line: string) => `<p>${escapeHtml(line)}</p>`;
  const html = [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8"><title>' + escapeHtml(subject) + '</title></head>',
    '<body style="font-family: system-ui, sans-serif; color: #1d2330; line-height: 1.5;">',
    ...before.map(p),
    `<p><a href="${escapeHtml(link)}" style="display: inline-block; background: #2451c6; color: #fff; padding: .6rem 1rem; border-radius: 8px; text-decoration: none;">${escapeHtml(action)}</a></p>`,
    `<p style="font-size: .9rem; color: #5b6473;">Or copy this address into your browser: ${escapeHtml(link)}</p>`,
    ...after.map(p),
    '</body></html>',
  ].join('\n');
  return { to, subject, text, html };
}

/** "Confirm your email address": sent on registration and when an address changes. */
export function verificationMessage(input: { to: string; username: string; link: string; hours: number; site: string }): MailMessage {
  return compose(input.to, 'Confirm your email address', {
    before: [
      `Hello ${input.username},`,
      `Please confirm that ${input.to} is the email address of your account at ${input.site} by opening this link and pressing "Verify":`,
    ],
    action: 'Verify my email address',
    link: input.link,
    after: [
      `The link works once and expires in ${input.hours} hours.`,
      'If you did not create an account or change your email address, ignore this message.',
    ],
  });
}

/** "Reset your password": sent when someone asks for it on the "Forgot your password?" page. */
export function passwordResetMessage(input: { to: string; username: string; link: string; minutes: number; site: string }): MailMessage {
  return compose(input.to, 'Reset your password', {
    before: [
      `Hello ${input.username},`,
      `Someone (hopefully you) asked to reset the password of your account at ${input.site}. To choose a new password, open this link:`,
    ],
    action: 'Choose a new password',
    link: input.link,
    after: [
      `The link works once and expires in ${input.minutes} minutes. Setting a new password signs you out everywhere.`,
      'If you did not ask for this, ignore this message: your password stays as it is.',
    ],
  });
}

/**
 * "Your email address is changing": to the old address when someone signed in as the person
 * asks to move the account to another one (or removes it). Nothing changes for recovery
 * until the new address is verified, so the owner has time to act.
 */
export function emailChangeNotice(input: { to: string; username: string; newAddress: string | null; site: string; link: string }): MailMessage {
  return compose(input.to, 'Your email address is being changed', {
    before: [
      `Hello ${input.username},`,
      input.newAddress
        ? `Someone signed in to your account at ${input.site} asked to change its email address from ${input.to} to ${input.newAddress}. It changes only once the new address is verified; until then sign-in and password reset keep using ${input.to}.`
        : `Someone signed in to your account at ${input.site} removed its email address ${input.to}.`,
      'If this was not you, change your password now and sign out your other sessions:',
    ],
    action: 'Open my account',
    link: input.link,
    after: ['If it was you, there is nothing to do.'],
  });
}
