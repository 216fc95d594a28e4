import type { Handler } from '../http/operations.js';
import type { ReadinessProbe } from './readiness.js';

/** Seconds a load balancer should wait before asking a not-ready instance again. */
const RETRY_AFTER_S = '5';

/** The liveness and readiness probes: no authentication, no rate limit, no request state. */
export function healthHandlers(probe: ReadinessProbe) {
  const getHealth: Handler<'getHealth'> = async () => ({ status: 200, body: { status: 'ok' } });

  const getReadiness: Handler<'getReadiness'> = async ({ res }) => {
    const body = await probe.check();
    if (body.status === 'ready') return { status: 200, body };
    // A documented non-2xx with its own (non-problem) body: handler replies are typed for 2xx only.
    res.status(503).set('Retry-After', RETRY_AFTER_S).json(body);
    return { status: 'handled' };
  };

  return { getHealth, getReadiness };
}
