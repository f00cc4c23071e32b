/**
 * Webhook secrets in Firestore: `webhookSecrets/{userId}` holds `{secret, createdAt}`. The
 * collection is the server's only (infra/firestore.rules refuses every client read), and the
 * secret leaves it only through `GET /v1/webhooks/secret`, to its owner.
 */
import type { Firestore } from "@google-cloud/firestore";
import type { WebhookSecrets } from "../../events/webhookSecrets.js";

const COLLECTION = "webhookSecrets";

export function createFirestoreWebhookSecrets(db: Firestore): WebhookSecrets {
  const secrets = db.collection(COLLECTION);
  return {
    async get(userId, created) {
      const document = secrets.doc(userId);
      const existing = await document.get();
      if (existing.exists) return existing.get("secret") as string;
      try {
        await document.create({ secret: created, createdAt: new Date() });
        return created;
      } catch (error) {
        // ALREADY_EXISTS: a first read at the same time won; its secret is the one.
        if (typeof error === "object" && error !== null && (error as { code?: unknown }).code === 6) {
          return (await document.get()).get("secret") as string;
        }
        throw error;
      }
    },
    async rotate(userId, secret) {
      await secrets.doc(userId).set({ secret, createdAt: new Date() });
    },
  };
}
