import type { WebhookSecrets } from "../../events/webhookSecrets.js";

/** Webhook secrets in memory, as the Firestore adapter keeps them. */
export function createMemoryWebhookSecrets(): WebhookSecrets {
  const secrets = new Map<string, string>();
  return {
    async get(userId, created) {
      if (!secrets.has(userId)) secrets.set(userId, created);
      return secrets.get(userId) as string;
    },
    async rotate(userId, secret) {
      secrets.set(userId, secret);
    },
  };
}
