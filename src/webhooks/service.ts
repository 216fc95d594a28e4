import type { components } from '../../generated/types.js';
import type { Database } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import * as log from './delivery-log.js';
import * as endpoints from './endpoints.js';
import type { EventType } from './outbox.js';
import type { SecretBox } from './secrets.js';

type Schemas = components['schemas'];

/** The partner webhook API: endpoints, secrets, the delivery log, resends. One transaction per call. */
export class WebhookService {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly box: SecretBox,
    private readonly allowHttpLocalhost: boolean,
  ) {}

  private ctx(): endpoints.EndpointContext {
    return { box: this.box, allowHttpLocalhost: this.allowHttpLocalhost, now: this.clock.now() };
  }

  async listEndpoints(partnerId: number): Promise<Schemas['WebhookEndpointList']> {
    const rows = await this.db.transaction((tx) => endpoints.listEndpoints(tx, partnerId));
    return { data: rows.map(endpoints.presentEndpoint) };
  }

  async createEndpoint(
    partnerId: number,
    input: { url: string; events: EventType[]; description?: string | undefined },
  ): Promise<Schemas['WebhookEndpointWithSecret']> {
    const { endpoint, secret } = await this.db.transaction((tx) =>
      endpoints.createEndpoint(tx, partnerId, input, this.ctx()),
    );
    return { ...endpoints.presentEndpoint(endpoint), secret };
  }

  async getEndpoint(partnerId: number, endpointId: string): Promise<Schemas['WebhookEndpoint']> {
    return endpoints.presentEndpoint(
      await this.db.transaction((tx) => endpoints.findEndpoint(tx, partnerId, endpointId)),
    );
  }

  async updateEndpoint(
    partnerId: number,
    endpointId: string,
    patch: Parameters<typeof endpoints.updateEndpoint>[3],
  ): Promise<Schemas['WebhookEndpoint']> {
    return endpoints.presentEndpoint(
      await this.db.transaction((tx) =>
        endpoints.updateEndpoint(tx, partnerId, endpointId, patch, this.ctx()),
      ),
    );
  }

  deleteEndpoint(partnerId: number, endpointId: string): Promise<void> {
    return this.db.transaction((tx) => endpoints.deleteEndpoint(tx, partnerId, endpointId, this.clock.now()));
  }

  async rotateSecret(partnerId: number, endpointId: string): Promise<Schemas['WebhookSecret']> {
    const { endpoint, secret } = await this.db.transaction((tx) =>
      endpoints.rotateSecret(tx, partnerId, endpointId, this.ctx()),
    );
    const rotatedAt = endpoint.secret_rotated_at ?? this.clock.now();
    const expires = endpoint.previous_secret_expires_at ?? rotatedAt;
    return {
      endpointId: endpoint.public_id,
      secret,
      rotatedAt: new Date(rotatedAt).toISOString(),
      previousSecretExpiresAt: new Date(expires).toISOString(),
    };
  }

  sendTestPing(partnerId: number, endpointId: string): Promise<Schemas['WebhookDelivery']> {
    return this.db.transaction((tx) => log.sendTestPing(tx, partnerId, endpointId, this.clock.now()));
  }

  recover(
    partnerId: number,
    endpointId: string,
    window: { since: string; until?: string | undefined },
  ): Promise<Schemas['WebhookRecovery']> {
    return this.db.transaction((tx) =>
      log.recoverDeliveries(tx, partnerId, endpointId, window, this.clock.now()),
    );
  }

  listDeliveries(
    partnerId: number,
    q: Parameters<typeof log.listDeliveries>[2],
  ): Promise<Schemas['WebhookDeliveryList']> {
    return this.db.transaction((tx) => log.listDeliveries(tx, partnerId, q));
  }

  /** The latest attempt (status, latency, start of the response) of each of these deliveries. */
  lastAttempts(partnerId: number, deliveryIds: readonly string[]): Promise<Map<string, log.LastAttempt>> {
    return this.db.transaction((tx) => log.lastAttempts(tx, partnerId, deliveryIds));
  }

  getDelivery(partnerId: number, deliveryId: string): Promise<Schemas['WebhookDeliveryDetail']> {
    return this.db.transaction((tx) => log.getDelivery(tx, partnerId, deliveryId));
  }

  resendDelivery(partnerId: number, deliveryId: string): Promise<Schemas['WebhookDelivery']> {
    return this.db.transaction((tx) => log.resendDelivery(tx, partnerId, deliveryId, this.clock.now()));
  }
}
