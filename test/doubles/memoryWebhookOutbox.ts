import type { WebhookDelivery, WebhookOutbox } from "../../events/webhookOutbox.js";

/** The webhook outbox in memory, as the Firestore adapter keeps it. */
export function createMemoryWebhookOutbox(): WebhookOutbox & { all(): WebhookDelivery[] } {
  const deliveries = new Map<string, WebhookDelivery>();
  const copy = (delivery: WebhookDelivery): WebhookDelivery => structuredClone(delivery);
  return {
    async add(delivery) {
      if (deliveries.has(delivery.id)) return false;
      deliveries.set(delivery.id, copy(delivery));
      return true;
    },
    async claim(id, now, claimUntil) {
      const delivery = deliveries.get(id);
      if (!delivery || delivery.state !== "pending" || delivery.nextAttemptAt === undefined) return undefined;
      if (Date.parse(delivery.nextAttemptAt) > now.getTime()) return undefined;
      delivery.nextAttemptAt = claimUntil.toISOString();
      return copy(delivery);
    },
    async record(id, attempt, outcome) {
      const delivery = deliveries.get(id);
      if (!delivery) throw new Error(`no delivery ${id}`);
      delivery.attempts.push({ ...attempt });
      delivery.state = outcome.state;
      if (outcome.state === "pending") delivery.nextAttemptAt = outcome.nextAttemptAt;
      else delete delivery.nextAttemptAt;
    },
    async listDue(now, limit) {
      return [...deliveries.values()]
        .filter((delivery) => delivery.nextAttemptAt !== undefined && Date.parse(delivery.nextAttemptAt) <= now.getTime())
        .sort((a, b) => Date.parse(a.nextAttemptAt as string) - Date.parse(b.nextAttemptAt as string))
        .slice(0, limit)
        .map((delivery) => delivery.id);
    },
    async listByJob(jobId) {
      return [...deliveries.values()]
        .filter((delivery) => delivery.jobId === jobId)
        .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
        .map(copy);
    },
    all: () => [...deliveries.values()].map(copy),
  };
}
