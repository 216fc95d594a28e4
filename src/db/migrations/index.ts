import { Migration20261123000001_core } from './Migration20261123000001_core.js';
import { Migration20261123000002_oauth } from './Migration20261123000002_oauth.js';
import { Migration20261123000003_token_superseded } from './Migration20261123000003_token_superseded.js';
import { Migration20261123000004_webhooks } from './Migration20261123000004_webhooks.js';
import { Migration20261123000005_subscriptions } from './Migration20261123000005_subscriptions.js';
import { Migration20261123000006_expiry_notices } from './Migration20261123000006_expiry_notices.js';
import { Migration20261123000007_idempotency_claim } from './Migration20261123000007_idempotency_claim.js';
import { Migration20261124000008_deduct_statement } from './Migration20261124000008_deduct_statement.js';
import { Migration20261124000009_partner_accounts } from './Migration20261124000009_partner_accounts.js';
import { Migration20261124000010_rate_limits } from './Migration20261124000010_rate_limits.js';
import { Migration20261124000011_ledger_user_history } from './Migration20261124000011_ledger_user_history.js';
import { Migration20261124000012_deduct_as_bearer } from './Migration20261124000012_deduct_as_bearer.js';

/** Every migration, in order. Listed explicitly so the same list runs from tsx, a build, or the CLI. */
export const migrationsList = [
  { name: 'Migration20261123000001_core', class: Migration20261123000001_core },
  { name: 'Migration20261123000002_oauth', class: Migration20261123000002_oauth },
  { name: 'Migration20261123000003_token_superseded', class: Migration20261123000003_token_superseded },
  { name: 'Migration20261123000004_webhooks', class: Migration20261123000004_webhooks },
  { name: 'Migration20261123000005_subscriptions', class: Migration20261123000005_subscriptions },
  { name: 'Migration20261123000006_expiry_notices', class: Migration20261123000006_expiry_notices },
  { name: 'Migration20261123000007_idempotency_claim', class: Migration20261123000007_idempotency_claim },
  { name: 'Migration20261124000008_deduct_statement', class: Migration20261124000008_deduct_statement },
  { name: 'Migration20261124000009_partner_accounts', class: Migration20261124000009_partner_accounts },
  { name: 'Migration20261124000010_rate_limits', class: Migration20261124000010_rate_limits },
  { name: 'Migration20261124000011_ledger_user_history', class: Migration20261124000011_ledger_user_history },
  { name: 'Migration20261124000012_deduct_as_bearer', class: Migration20261124000012_deduct_as_bearer },
];
