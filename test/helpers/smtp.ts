import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/** A message as the SMTP server received it, with the parts a person reads decoded. */
export interface ReceivedMail {
  /** Envelope sender and recipients (what SMTP was told, not the headers). */
  envelopeFrom: string;
  envelopeTo: string[];
  headers: Map<string, string>;
  subject: string;
  text: string;
  html: string;
  raw: string;
}

export interface TestSmtpServer {
  /** `smtp://127.0.0.1:<port>`, for SMTP_URL. */
  url: string;
  /** Every message received so far, oldest first. */
  received: ReceivedMail[];
  /** The next message to `address` not taken yet (waits up to `timeoutMs`). */
  next(address: string, timeoutMs?: number): Promise<ReceivedMail>;
  /** Messages to `address` received so far (taken or not). */
  to(address: string): ReceivedMail[];
  stop(): Promise<void>;
}

/** Header name (lower case) to unfolded value; the first occurrence wins. */
function parseHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.replace(/\n[ \t]+/g, ' ').split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) {
      const name = line.slice(0, colon).trim().toLowerCase();
      if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
    }
  }
  return headers;
}

function splitHead(entity: string): { headers: Map<string, string>; body: string } {
  const end = entity.indexOf('\n\n');
  return end < 0 ? { headers: parseHeaders(entity), body: '' } : { headers: parseHeaders(entity.slice(0, end)), body: entity.slice(end + 2) };
}

function decodeBody(body: string, encoding: string | undefined): string {
  switch ((encoding ?? '7bit').toLowerCase()) {
    case 'quoted-printable': {
      const bytes = body.replace(/=\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
      return Buffer.from(bytes, 'latin1').toString('utf8');
    }
    case 'base64':
      return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    default:
      return body;
  }
}

/** The text/plain and text/html parts of a message (single part or multipart/alternative). */
function readParts(entity: string, found: { text: string; html: string }): void {
  const { headers, body } = splitHead(entity);
  const type = headers.get('content-type') ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (/^multipart\//i.test(type) && boundary) {
    const parts = body.split(`--${boundary}`).slice(1);
    for (const part of parts) {
      if (part.startsWith('--')) break;
      readParts(part.replace(/^\n/, ''), found);
    }
    return;
  }
  const decoded = decodeBody(body, headers.get('content-transfer-encoding'));
  if (/^text\/html/i.test(type)) found.html = decoded;
  else if (/^text\/plain/i.test(type)) found.text = decoded;
}

/** Parses an RFC 5322 message (as received, or as written to the outbox) into its readable parts. */
export function parseMail(raw: string, envelopeFrom = '', envelopeTo: string[] = []): ReceivedMail {
  const normalized = raw.replace(/\r\n/g, '\n');
  const found = { text: '', html: '' };
  readParts(normalized, found);
  const headers = splitHead(normalized).headers;
  return { envelopeFrom, envelopeTo, headers, subject: headers.get('subject') ?? '', ...found, raw };
}

/**
 * A real SMTP server on 127.0.0.1, port 0, for tests: Latchkey sends to it through
 * SMTP_URL exactly as it would to a production relay. No STARTTLS (no certificate here),
 * no authentication.
 */
export async function startSmtpServer(): Promise<TestSmtpServer> {
  const received: ReceivedMail[] = [];
  const taken = new Set<ReceivedMail>();
  const waiters: Array<{ address: string; resolve: (mail: ReceivedMail) => void }> = [];
  const lower = (address: string) => address.toLowerCase();

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
        const to = session.envelope.rcptTo.map((r) => lower(r.address));
        const mail = parseMail(Buffer.concat(chunks).toString('utf8'), from, to);
        received.push(mail);
        for (const [i, waiter] of waiters.entries()) {
          if (to.includes(waiter.address)) {
            waiters.splice(i, 1);
            taken.add(mail);
            waiter.resolve(mail);
            break;
          }
        }
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;

  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    to: (address) => received.filter((m) => m.envelopeTo.includes(lower(address))),
    next(address, timeoutMs = 10_000) {
      const wanted = lower(address);
      const ready = received.find((m) => !taken.has(m) && m.envelopeTo.includes(wanted));
      if (ready) {
        taken.add(ready);
        return Promise.resolve(ready);
      }
      return new Promise<ReceivedMail>((resolve, reject) => {
        const waiter = { address: wanted, resolve };
        waiters.push(waiter);
        setTimeout(() => {
          const index = waiters.indexOf(waiter);
          if (index < 0) return;
          waiters.splice(index, 1);
          reject(new Error(`no mail to ${address} within ${timeoutMs} ms`));
        }, timeoutMs).unref();
      });
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The first link in a text that starts with `prefix` (links end at whitespace). */
export function linkIn(text: string, prefix: string): string {
  const start = text.indexOf(prefix);
  if (start < 0) throw new Error(`no link starting with ${prefix} in:\n${text}`);
  return /^\S+/.exec(text.slice(start))![0];
}
