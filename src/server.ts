import { createServer, type Server } from 'node:http';
import type express from 'express';
import type { Config } from './config.js';
import {
  buildContainer,
  type ContainerOptions,
  closeContainer,
  jobConcurrency,
  type Services,
} from './container.js';
import { createApi } from './http/app.js';
import { metricsEndpoint } from './http/metrics-endpoint.js';
import { bearerCheckedRoutes, routes } from './http/routes.js';
import { JobRunner } from './jobs/runner.js';
import { buildTasks, CRONTAB } from './jobs/tasks.js';
import { dashboardPages } from './web/dashboard/router.js';
import { docsPages } from './web/docs/router.js';
import { walletPages } from './web/wallet/router.js';

export type Running = {
  app: express.Express;
  services: Services;
  server: Server;
  url: string;
  /** The in-process job runner, unless started with `worker: false`. */
  runner: JobRunner | undefined;
  /** One shutdown for both: stop accepting, finish requests and running jobs within the deadline. */
  close(): Promise<void>;
};

export type ServerOptions = ContainerOptions & {
  /** Run the job runner in this process too (default). Tests drive jobs themselves instead. */
  worker?: boolean;
};

export async function startServer(config: Config, opts: ServerOptions = {}): Promise<Running> {
  const services = await buildContainer(config, opts);
  const inflight = new Set<Promise<unknown>>();
  const pages = [
    metricsEndpoint(config, services.metrics),
    walletPages(services),
    dashboardPages(services),
    docsPages(),
  ];
  const { app, listener } = createApi({
    services,
    handlers: routes(services),
    bearerChecked: bearerCheckedRoutes(services),
    pages,
    inflight,
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = createServer(listener);
    s.once('error', reject);
    s.listen(config.port, config.host, () => resolve(s));
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  if (!config.publicUrl) services.config.publicUrl = url;
  const runner = opts.worker === false ? undefined : await startRunner(services);
  services.readiness.runner = runner;
  return {
    app,
    services,
    server,
    url,
    runner,
    async close() {
      const deadline = config.shutdownTimeoutMs;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const late = setTimeout(() => server.closeAllConnections(), deadline).unref();
      await Promise.all([closed, runner?.stop(deadline)]);
      // Handlers whose client hung up are still running: let them finish before the database goes.
      const stragglers = Promise.allSettled([...inflight]);
      await Promise.race([stragglers, new Promise((resolve) => setTimeout(resolve, deadline).unref())]);
      clearTimeout(late);
      await closeContainer(services, opts);
    },
  };
}

/** The job runner over the container's services (used by `npm start` and `npm run worker`). */
export function startRunner(services: Services): Promise<JobRunner> {
  return JobRunner.start({
    pgPool: services.jobsPool,
    tasks: buildTasks(services),
    concurrency: jobConcurrency(services.config, services.db),
    pollInterval: services.config.jobPollIntervalMs,
    crontab: CRONTAB,
    log: services.log,
  });
}
