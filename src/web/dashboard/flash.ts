import type { Request, Response } from 'express';
import type { Config } from '../../config.js';
import type { Clock } from '../../lib/clock.js';
import { SecretBox } from '../../webhooks/secrets.js';
import { readCookie, sessionKey } from '../shared/sessions.js';

/** What the page after a POST shows once: a notice, and maybe a new secret. */
export type Flash = { notice: string; secret?: { label: string; value: string } };

const MAX_AGE_MS = 60_000;

/**
 * Shown-once messages across the 303 that follows every POST (RFC 9700 §4.12), without a table:
 * a short-lived cookie, sealed (AES-256-GCM) and bound to the session it was set for, so it is
 * unreadable to anyone but this server and useless in another session. A new secret (client
 * secret, webhook signing secret) travels this way to the one page view that shows it; the GET
 * clears the cookie, so a reload does not show it again.
 */
export class FlashMessages {
  private readonly box: SecretBox;
  private readonly name: string;

  constructor(
    private readonly config: Config,
    private readonly clock: Clock,
  ) {
    this.box = new SecretBox(sessionKey(config, 'askTIAN dashboard flash v1'));
    this.name = config.production ? '__Host-tian_partner_flash' : 'tian_partner_flash';
  }

  set(res: Response, sessionIdHash: string, flash: Flash): void {
    const sealed = this.box.seal(JSON.stringify({ ...flash, at: this.clock.now().getTime() }), sessionIdHash);
    res.cookie(this.name, sealed, { ...this.options(), maxAge: MAX_AGE_MS });
  }

  /** The flash set for this session, if any; clears it. */
  take(req: Request, res: Response, sessionIdHash: string): Flash | undefined {
    const sealed = readCookie(req, this.name);
    if (!sealed) return undefined;
    res.clearCookie(this.name, this.options());
    try {
      const flash = JSON.parse(this.box.open(decodeURIComponent(sealed), sessionIdHash)) as Flash & {
        at: number;
      };
      return this.clock.now().getTime() - flash.at <= MAX_AGE_MS ? flash : undefined;
    } catch {
      return undefined;
    }
  }

  private options() {
    return { httpOnly: true, sameSite: 'lax' as const, secure: this.config.production, path: '/' };
  }
}
