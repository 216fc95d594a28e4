import type { components } from '../../generated/types.js';
import type { Database } from '../db/database.js';

export type Readiness = components['schemas']['Readiness'];
type Outcome = components['schemas']['CheckOutcome'];

/** What readiness needs to know of the job runner: whether it is still taking jobs. */
export type RunnerState = { readonly running: boolean };

/**
 * Readiness of this instance: can it serve requests now? The database answers, every committed
 * migration is applied, and the job runner runs (when this process was started with one).
 */
export class ReadinessProbe {
  /** Set by the server once its job runner has started; undefined when this process runs no jobs. */
  runner: RunnerState | undefined;

  constructor(private readonly db: Database) {}

  async check(): Promise<Readiness> {
    const [database, migrations] = await this.database();
    const jobRunner: Outcome = !this.runner ? 'not_running_here' : this.runner.running ? 'ok' : 'failed';
    const checks = { database, migrations, jobRunner };
    const ready = database === 'ok' && migrations === 'ok' && jobRunner !== 'failed';
    return { status: ready ? 'ready' : 'unavailable', checks };
  }

  /** A database that cannot answer cannot tell us about its migrations either: both fail. */
  private async database(): Promise<[Outcome, Outcome]> {
    try {
      await this.db.query('select 1');
    } catch {
      return ['failed', 'failed'];
    }
    try {
      return ['ok', (await this.db.pendingMigrations()).length === 0 ? 'ok' : 'failed'];
    } catch {
      return ['ok', 'failed'];
    }
  }
}
