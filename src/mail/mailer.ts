import { createTransport } from 'nodemailer';

/** One plain-text email to one recipient. */
export type Email = { to: string; subject: string; text: string };

/** Sends email; a send that fails throws, so the job that called it is retried. */
export interface Mailer {
  send(email: Email): Promise<void>;
  close(): void;
}

/**
 * A mailer over nodemailer's SMTP transport, or undefined when no SMTP_URL is configured (email
 * off). The timeouts are short because a send runs inside a job: a dead server should fail the
 * attempt quickly and leave the retry to the job runner, not hold a worker.
 */
export function smtpMailer(config: { smtpUrl: string | undefined; mailFrom: string }): Mailer | undefined {
  if (!config.smtpUrl) return undefined;
  const transport = createTransport({
    url: config.smtpUrl,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  return {
    async send(email) {
      const info = await transport.sendMail({ from: config.mailFrom, ...email });
      // A server that accepted the connection but refused the recipient resolves without throwing.
      if (info.rejected.length > 0)
        throw new Error(`The SMTP server refused the recipient: ${info.response}`);
    },
    close: () => transport.close(),
  };
}
