import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { Logger } from '../../observability/logger.js';
import type { MailConfig } from '../../config.js';

/** One outgoing message: plain text for every client, HTML for those that show it. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface Mailer {
  /** Delivers a message (SMTP) or writes it to the outbox; rejects when that failed. */
  send(message: MailMessage): Promise<void>;
  /** Closes SMTP connections. */
  close(): void;
}

/**
 * Sends mail over SMTP when `SMTP_URL` is set. Without it, each message is rendered exactly
 * as it would be sent and written as an .eml file to the outbox folder, with one log line
 * saying where: `npm install && npm start` works without a mail server, and a developer
 * opens the file to follow the link. Outbox files hold live links, so only the owner may
 * read them.
 */
export function createMailer(config: MailConfig, logger: Logger): Mailer {
  if (config.smtpUrl) {
    const transport = nodemailer.createTransport({
      url: config.smtpUrl,
      // nodemailer waits minutes by default; a mail server that does not answer within
      // seconds is down, and the send is logged as failed. Query parameters in SMTP_URL win.
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
    });
    return {
      async send(message) {
        await transport.sendMail({ from: config.from, ...message });
      },
      close: () => transport.close(),
    };
  }

  const render = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    async send(message) {
      const info = await render.sendMail({ from: config.from, ...message });
      await fs.mkdir(config.outboxDir, { recursive: true, mode: 0o700 });
      const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}.eml`;
      const file = path.join(config.outboxDir, name);
      await fs.writeFile(file, info.message as Buffer, { mode: 0o600, flag: 'wx' });
      logger.info({ file, subject: message.subject }, 'mail written to the outbox (SMTP_URL is not set)');
    },
    close: () => render.close(),
  };
}
