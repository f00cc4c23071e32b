/**
 * What every WebhookOutbox and WebhookSecrets must do, run against the in-memory doubles (unit
 * tier) and the Firestore adapters on the official emulator (int tier).
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { WebhookDelivery, WebhookOutbox } from "../../events/webhookOutbox.js";
import type { WebhookSecrets } from "../../events/webhookSecrets.js";

function delivery(jobId: string, seq: number, createdAt: Date): WebhookDelivery {
  return {
    id: `msg_${jobId}_${seq}`,
    jobId,
    ownerId: `owner-${randomUUID()}`,
    url: "https://hooks.example.com/edits",
    type: "edit.succeeded",
    body: JSON.stringify({ type: "edit.succeeded", data: { jobId } }),
    createdAt: createdAt.toISOString(),
    state: "pending",
    nextAttemptAt: createdAt.toISOString(),
    attempts: [],
  };
}

export function webhookOutboxContract(adapter: string, make: () => WebhookOutbox): void {
  describe(`WebhookOutbox contract: ${adapter}`, () => {
    const t0 = new Date("2026-11-30T10:00:00.000Z");
    const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);

    it("adds a message once: a repeated trigger adds nothing", async () => {
      const outbox = make();
      const jobId = randomUUID();
      expect(await outbox.add(delivery(jobId, 5, t0))).toBe(true);
      expect(await outbox.add({ ...delivery(jobId, 5, t0), body: "another" })).toBe(false);
      const [only, ...rest] = await outbox.listByJob(jobId);
      expect(rest).toEqual([]);
      expect(only).toMatchObject({ id: `msg_${jobId}_5`, state: "pending", attempts: [], body: expect.stringContaining(jobId) });
    });

    it("lets one claimant at a time attempt a due message, and a lapsed claim be taken again", async () => {
      const outbox = make();
      const jobId = randomUUID();
      await outbox.add(delivery(jobId, 3, t0));
      const claims = await Promise.all([outbox.claim(`msg_${jobId}_3`, at(1), at(41)), outbox.claim(`msg_${jobId}_3`, at(1), at(41))]);
      expect(claims.filter(Boolean)).toHaveLength(1);
      expect(await outbox.claim(`msg_${jobId}_3`, at(40), at(80))).toBeUndefined();
      expect(await outbox.claim(`msg_${jobId}_3`, at(42), at(82))).toMatchObject({ id: `msg_${jobId}_3`, jobId });
      expect(await outbox.claim(`msg_unknown_${randomUUID()}`, at(42), at(82))).toBeUndefined();
    });

    it("records each attempt, schedules the next, and lists what is due", async () => {
      const outbox = make();
      const jobId = randomUUID();
      const id = `msg_${jobId}_4`;
      await outbox.add(delivery(jobId, 4, t0));
      expect(await outbox.listDue(at(0), 1000)).toContain(id);
      await outbox.claim(id, at(0), at(40));
      expect(await outbox.listDue(at(1), 1000)).not.toContain(id);
      await outbox.record(id, { at: at(0).toISOString(), durationMs: 12, status: 500, error: "the receiver answered 500" }, { state: "pending", nextAttemptAt: at(5).toISOString() });
      expect(await outbox.listDue(at(4), 1000)).not.toContain(id);
      expect(await outbox.listDue(at(5), 1000)).toContain(id);
      await outbox.claim(id, at(5), at(45));
      await outbox.record(id, { at: at(5).toISOString(), durationMs: 8, status: 204 }, { state: "delivered" });
      expect(await outbox.listDue(at(10_000), 1000)).not.toContain(id);
      const [stored] = await outbox.listByJob(jobId);
      expect(stored?.state).toBe("delivered");
      expect(stored?.nextAttemptAt).toBeUndefined();
      expect(stored?.attempts).toEqual([
        { at: at(0).toISOString(), durationMs: 12, status: 500, error: "the receiver answered 500" },
        { at: at(5).toISOString(), durationMs: 8, status: 204 },
      ]);
      expect(await outbox.claim(id, at(10_000), at(10_040))).toBeUndefined();
    });

    it("keeps each job's messages apart, oldest first", async () => {
      const outbox = make();
      const [a, b] = [randomUUID(), randomUUID()];
      await outbox.add(delivery(a, 6, at(2)));
      await outbox.add(delivery(a, 4, at(1)));
      await outbox.add(delivery(b, 4, at(1)));
      expect((await outbox.listByJob(a)).map((entry) => entry.id)).toEqual([`msg_${a}_4`, `msg_${a}_6`]);
      expect(await outbox.listByJob(randomUUID())).toEqual([]);
    });
  });
}

export function webhookSecretsContract(adapter: string, make: () => WebhookSecrets): void {
  describe(`WebhookSecrets contract: ${adapter}`, () => {
    it("keeps the first secret a user reads, and agrees on it when two first reads race", async () => {
      const secrets = make();
      const user = `user-${randomUUID()}`;
      const [first, second] = await Promise.all([secrets.get(user, "whsec_AAAA"), secrets.get(user, "whsec_BBBB")]);
      expect(first).toBe(second);
      expect(await secrets.get(user, "whsec_CCCC")).toBe(first);
    });

    it("rotates one user's secret and no one else's", async () => {
      const secrets = make();
      const [alice, bob] = [`alice-${randomUUID()}`, `bob-${randomUUID()}`];
      await secrets.get(alice, "whsec_AAAA");
      await secrets.get(bob, "whsec_BBBB");
      await secrets.rotate(alice, "whsec_DDDD");
      expect(await secrets.get(alice, "whsec_EEEE")).toBe("whsec_DDDD");
      expect(await secrets.get(bob, "whsec_EEEE")).toBe("whsec_BBBB");
    });
  });
}
