import type { NextFunction, Request, Response } from 'express';
import type { Services } from '../../container.js';
import { addressKey } from '../../http/rate-limits.js';
import { sendPage } from './html.js';
import { errorPage } from './layout.js';

/**
 * Per client address (DESIGN.md: before a verified identity, and for every failed sign-in): a
 * budget of AUTH_RATE_LIMIT_PER_MINUTE for one sign-in counter (page views, or attempts, failed or
 * not), exact across instances, on the injected clock. Over budget: a 429 page with Retry-After.
 */
export function signInLimiter(s: Pick<Services, 'limits' | 'config'>, name: string) {
  const counter = s.limits.counter(name, s.config.authRateLimitPerMinute);
  return (req: Request, res: Response, next: NextFunction): void => {
    const key = addressKey(req.ip);
    // An address known to be over budget is refused without counting it again.
    const known = counter.knownRetryAfter([key]);
    (known === undefined ? counter.hit([key]) : Promise.resolve(known)).then((wait) => {
      if (wait === undefined) return next();
      res.set('Retry-After', String(wait));
      sendPage(res, 429, errorPage('Too many sign-in attempts', `Wait ${wait} seconds, then try again.`));
    }, next);
  };
}
