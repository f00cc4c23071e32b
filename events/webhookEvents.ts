/**
 * Webhooks as the core sees them: which job events a caller may subscribe to, the default, the
 * subscription a job carries, and the job event each webhook event stands for.
 */
import type { RecordedEvent } from "./editEvents.js";

export const WEBHOOK_EVENTS = ["running", "progress", "succeeded", "failed", "canceled"] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** What a caller gets without naming events: the job's end, whichever it is. */
export const DEFAULT_WEBHOOK_EVENTS: readonly WebhookEvent[] = ["succeeded", "failed", "canceled"];

/** Where a job's webhooks go and which of its events they tell. */
export interface WebhookSubscription {
  url: string;
  events: WebhookEvent[];
}

export function isWebhookEvent(value: unknown): value is WebhookEvent {
  return typeof value === "string" && (WEBHOOK_EVENTS as readonly string[]).includes(value);
}

/** The webhook event a recorded job event stands for, if any. */
export function webhookEventOf(event: Pick<RecordedEvent, "type">): WebhookEvent | undefined {
  switch (event.type) {
    case "EditStarted":
      return "running";
    case "EditProgressed":
      return "progress";
    case "EditSucceeded":
      return "succeeded";
    case "EditFailed":
      return "failed";
    case "EditCanceled":
      return "canceled";
    default:
      return undefined;
  }
}
