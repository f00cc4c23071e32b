/**
 * The webhook secrets port: each user's signing secret (`whsec_<base64>`), kept where no client
 * reads it. Adapters: Firestore (adapters/firestore/firestoreWebhookSecrets.ts); the unit tests'
 * double is test/doubles/memoryWebhookSecrets.ts. Both pass test/support/webhookSecretsContract.ts.
 */
export interface WebhookSecrets {
  /** The user's secret; the first read stores `created` and answers it. Two first reads at once agree. */
  get(userId: string, created: string): Promise<string>;
  /** Replaces the user's secret; deliveries from then on are signed with `secret`. */
  rotate(userId: string, secret: string): Promise<void>;
}
