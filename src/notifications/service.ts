import type { Database } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import { type NotificationView, presentNotification } from './presenter.js';
import { dismissNotification, listShowing } from './store.js';

/** The user's notifications as the wallet pages use them, on the injected clock. */
export class NotificationsService {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
  ) {}

  async showing(userId: number): Promise<NotificationView[]> {
    return (await listShowing(this.db, userId, this.clock.now())).map(presentNotification);
  }

  dismiss(userId: number, id: number): Promise<'dismissed' | 'unknown'> {
    return dismissNotification(this.db, userId, id, this.clock.now());
  }
}
