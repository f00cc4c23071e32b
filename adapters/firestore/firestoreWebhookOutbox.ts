/**
 * The webhook outbox in Firestore: `webhookDeliveries/{messageId}`, one document per message with
 * its attempts. `nextAttemptAt` (a Timestamp) exists only while the delivery is pending, so that
 * the due query is one single-field range (no composite index). A claim is a transaction on the
 * document. No client reads the collection (infra/firestore.rules): the owner reads it through
 * `GET /v1/edits/{jobId}/webhooks`. Every document carries `expiresAt`, for a TTL policy.
 */
import { FieldValue, Timestamp, type DocumentData, type Firestore } from "@google-cloud/firestore";
import type { WebhookDelivery, WebhookOutbox } from "../../events/webhookOutbox.js";

const COLLECTION = "webhookDeliveries";
/** How long a delivery's record is kept after it was made: past the retry window, for the owner to read. */
const KEEP_MS = 7 * 24 * 3600_000;

export function createFirestoreWebhookOutbox(db: Firestore): WebhookOutbox {
  const deliveries = db.collection(COLLECTION);
  return {
    async add(delivery) {
      try {
        await deliveries.doc(delivery.id).create(toDocument(delivery));
        return true;
      } catch (error) {
        if (isGrpcCode(error, 6)) return false; // ALREADY_EXISTS: a repeated trigger.
        throw error;
      }
    },
    async claim(id, now, claimUntil) {
      return await db.runTransaction(async (transaction) => {
        const snapshot = await transaction.get(deliveries.doc(id));
        if (!snapshot.exists) return undefined;
        const delivery = fromDocument(snapshot.data() as DocumentData);
        if (delivery.state !== "pending" || delivery.nextAttemptAt === undefined || Date.parse(delivery.nextAttemptAt) > now.getTime()) return undefined;
        transaction.update(snapshot.ref, { nextAttemptAt: Timestamp.fromDate(claimUntil) });
        return { ...delivery, nextAttemptAt: claimUntil.toISOString() };
      });
    },
    async record(id, attempt, outcome) {
      await deliveries.doc(id).update({
        attempts: FieldValue.arrayUnion(attempt),
        state: outcome.state,
        nextAttemptAt: outcome.state === "pending" ? Timestamp.fromDate(new Date(outcome.nextAttemptAt)) : FieldValue.delete(),
      });
    },
    async listDue(now, limit) {
      const snapshot = await deliveries.where("nextAttemptAt", "<=", Timestamp.fromDate(now)).orderBy("nextAttemptAt").limit(limit).select().get();
      return snapshot.docs.map((doc) => doc.id);
    },
    async listByJob(jobId) {
      const snapshot = await deliveries.where("jobId", "==", jobId).get();
      return snapshot.docs.map((doc) => fromDocument(doc.data())).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    },
  };
}

function toDocument(delivery: WebhookDelivery): DocumentData {
  const { nextAttemptAt, ...rest } = delivery;
  return {
    ...rest,
    ...(nextAttemptAt === undefined ? {} : { nextAttemptAt: Timestamp.fromDate(new Date(nextAttemptAt)) }),
    expiresAt: Timestamp.fromMillis(Date.parse(delivery.createdAt) + KEEP_MS),
  };
}

function fromDocument(data: DocumentData): WebhookDelivery {
  const { nextAttemptAt, expiresAt: _expiresAt, ...rest } = data as WebhookDelivery & { nextAttemptAt?: Timestamp; expiresAt?: Timestamp };
  return { ...rest, ...(nextAttemptAt === undefined ? {} : { nextAttemptAt: nextAttemptAt.toDate().toISOString() }) };
}

function isGrpcCode(error: unknown, code: number): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === code;
}
