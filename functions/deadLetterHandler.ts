/**
 * The dead-letter handler: Pub/Sub moved a job's message to the dead-letter topic after
 * `maxDeliveryAttempts` deliveries. The job fails with a reason a person can read, unless its
 * log says otherwise: a job that has ended stays as it is, and a job a live worker holds (a
 * duplicate of a long job can run out of deliveries while the job runs fine) is left to that
 * worker, with the sweeper as the net should the worker die.
 */
import { handleCommand } from "../events/handleCommand.js";
import { isOperation } from "../events/operations.js";
import type { Clock } from "../events/clock.js";
import type { EventStore } from "../events/eventStore.js";
import type { Logger } from "../events/logger.js";

/** A Pub/Sub message as Eventarc's `messagePublished` CloudEvent carries it. */
export interface PubsubMessageData {
  message?: { data?: string; attributes?: Record<string, string>; messageId?: string };
  subscription?: string;
}

export type DeadLetterOutcome = "failed" | "held" | "ended" | "ignored";

/** Pub/Sub's attribute on a dead-lettered message: deliveries made on the source subscription. */
const DELIVERY_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount";

export function createDeadLetterHandler(deps: { store: EventStore; clock: Clock; log?: Logger }): (data: PubsubMessageData) => Promise<DeadLetterOutcome> {
  const log = deps.log ?? (() => {});
  return async (data) => {
    const job = parseJob(data.message?.data);
    if (!job) {
      log({ severity: "WARNING", message: "dead letter ignored: not a job message", messageId: data.message?.messageId });
      return "ignored";
    }
    const deliveryAttempts = Number(data.message?.attributes?.[DELIVERY_COUNT] ?? 0) || 0;
    const outcome = await handleCommand(deps, job.jobId, { type: "FailDeadLettered", deliveryAttempts });
    if (!outcome.rejection) {
      log({ severity: "WARNING", message: "dead-lettered job failed", jobId: job.jobId, deliveryAttempts });
      return "failed";
    }
    const code = outcome.rejection.code;
    log({ message: "dead letter needs no change", jobId: job.jobId, reason: outcome.rejection.message });
    if (code === "lease_held") return "held";
    if (code === "already_ended") return "ended";
    return "ignored";
  };
}

function parseJob(base64: string | undefined): { jobId: string } | undefined {
  if (!base64) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(base64, "base64").toString("utf8")) as { jobId?: unknown; operation?: unknown };
    return typeof parsed.jobId === "string" && parsed.jobId !== "" && isOperation(parsed.operation) ? { jobId: parsed.jobId } : undefined;
  } catch {
    return undefined;
  }
}
